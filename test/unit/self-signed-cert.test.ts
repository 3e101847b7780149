import { createPrivateKey, X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { derInteger, makeSelfSignedCert } from "../../src/server/tls/self-signed-cert.js";

describe("the self-signed certificate's DER", () => {
  it("encodes non-negative INTEGERs minimally: no leading zero octets, one when the top bit is set", () => {
    const hex = (b: number[]) => derInteger(Buffer.from(b)).toString("hex");
    expect(hex([0x05])).toBe("020105");
    // A random serial whose first octet is 0 (OpenSSL refused these as "illegal padding").
    expect(hex([0x00, 0x05, 0x06])).toBe("02020506");
    expect(hex([0x00, 0x00, 0x85])).toBe("02020085");
    expect(hex([0x85])).toBe("02020085");
    expect(hex([0x00])).toBe("020100");
  });

  it("makes certificates OpenSSL loads, whose key matches and whose signature verifies (200 in a row)", () => {
    for (let i = 0; i < 200; i++) {
      const pair = makeSelfSignedCert("shed-test", ["127.0.0.1", "::1", "shed.example"]);
      const cert = new X509Certificate(pair.cert);
      expect(cert.checkPrivateKey(createPrivateKey(pair.key))).toBe(true);
      expect(cert.verify(cert.publicKey)).toBe(true);
      expect(cert.subjectAltName).toContain("IP Address:127.0.0.1");
    }
  });
});
