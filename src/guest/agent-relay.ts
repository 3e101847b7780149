import type { Duplex } from "node:stream";
import type { GuestExec } from "./exec.js";

/**
 * SSH agent forwarding inside a guest, on any backend: a fixed Perl script
 * (perl-base is Essential in Debian, so every shed image has it) runs as the
 * shed user through GuestExec, listens on a Unix socket in a fresh 0700
 * directory, and multiplexes its connections over its own stdin/stdout.
 * The server maps each connection to an agent channel back to the client.
 *
 * Frames, both ways: type (u8), connection id (u32 BE), length (u32 BE), payload.
 */
export const FRAME = { READY: 0, OPEN: 1, DATA: 2, CLOSE: 3 } as const;
const HEADER = 9;

export interface Frame {
  type: number;
  id: number;
  data: Buffer;
}

export function encodeFrame(type: number, id: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(HEADER);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(id, 1);
  head.writeUInt32BE(data.length, 5);
  return Buffer.concat([head, data]);
}

/** Splits a byte stream into frames, whatever the chunking. */
export class FrameReader {
  private buf = Buffer.alloc(0);
  push(chunk: Buffer): Frame[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    while (this.buf.length >= HEADER) {
      const len = this.buf.readUInt32BE(5);
      if (this.buf.length < HEADER + len) break;
      out.push({
        type: this.buf.readUInt8(0),
        id: this.buf.readUInt32BE(1),
        data: Buffer.from(this.buf.subarray(HEADER, HEADER + len)),
      });
      this.buf = this.buf.subarray(HEADER + len);
    }
    return out;
  }
}

/**
 * $1 is the directory to create (it must not exist: mkdir fails on anything
 * planted there, and the sticky /tmp keeps others from swapping it). The socket
 * is $1/agent.sock, mode 0600; both go when stdin ends or on SIGHUP/SIGTERM.
 * $2 is the stable link (relative to the user's home unless absolute) that
 * points to the latest relay's socket, for tmux sessions that outlive a
 * connection; a relay removes it on exit only while it still points to its own socket.
 */
export const RELAY_SCRIPT = String.raw`
use strict; use warnings;
use IO::Socket::UNIX; use IO::Select; use Socket;
my $dir = $ARGV[0];
umask 077;
mkdir($dir, 0700) or die "shed-agent: cannot create $dir: $!\n";
my @st = lstat $dir;
die "shed-agent: $dir is not a private directory\n" unless -d _ && $st[4] == $< && ($st[2] & 07777) == 0700;
my $path = "$dir/agent.sock";
my $link = $ARGV[1];
$link = (getpwuid $<)[7] . "/$link" unless $link =~ m{^/};
sub cleanup {
  my $to = readlink $link;
  unlink $link if defined $to && $to eq $path;
  unlink $path; rmdir $dir;
}
my $l = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => $path, Listen => 16)
  or do { my $e = $!; cleanup(); die "shed-agent: cannot listen on $path: $e\n" };
chmod 0600, $path;
symlink($path, "$link.$$") and rename("$link.$$", $link);
$SIG{HUP} = $SIG{TERM} = $SIG{INT} = sub { cleanup(); exit 0 };
$SIG{PIPE} = 'IGNORE';
binmode STDIN; binmode STDOUT;
sub frame {
  my ($t, $id, $d) = @_; $d = '' unless defined $d;
  my $b = pack('CNN', $t, $id, length $d) . $d;
  while (length $b) {
    my $n = syswrite(STDOUT, $b);
    if (!defined $n) { cleanup(); exit 0 }
    substr($b, 0, $n) = '';
  }
}
my $sel = IO::Select->new($l, \*STDIN);
my (%conn, %id_of); my $next = 1; my $in = '';
sub close_conn {
  my $id = shift; my $c = delete $conn{$id} or return;
  delete $id_of{fileno $c}; $sel->remove($c); close $c;
}
frame(0, 0, $path);
while (1) {
  for my $fh ($sel->can_read) {
    my $fd = fileno $fh;
    if ($fd == fileno $l) {
      my $c = $l->accept or next;
      my $id = $next++; $conn{$id} = $c; $id_of{fileno $c} = $id; $sel->add($c);
      frame(1, $id);
    } elsif ($fd == 0) {
      my $n = sysread(STDIN, $in, 65536, length $in);
      if (!$n) { cleanup(); exit 0 }
      while (length $in >= 9) {
        my ($t, $id, $len) = unpack('CNN', $in);
        last if length $in < 9 + $len;
        my $d = substr($in, 9, $len); substr($in, 0, 9 + $len) = '';
        my $c = $conn{$id} or next;
        if ($t == 2) {
          my $off = 0;
          while ($off < length $d) {
            my $w = syswrite($c, $d, length($d) - $off, $off);
            last unless defined $w; $off += $w;
          }
        } elsif ($t == 3) { close_conn($id) }
      }
    } else {
      my $id = $id_of{$fd};
      my $n = sysread($fh, my $buf, 65536);
      if ($n) { frame(2, $id, $buf) } else { frame(3, $id); close_conn($id) }
    }
  }
}
`;

/** `link` is the stable link (protocol/agent-link.ts); the server passes it. */
export function agentRelayArgv(dir: string, link: string): string[] {
  return ["perl", "-e", RELAY_SCRIPT, dir, link];
}

export interface AgentRelay {
  /** The socket's path inside the guest (for SSH_AUTH_SOCK). */
  socketPath: string;
  /** Ends the relay: the guest removes the socket and its directory. */
  close(): void;
  /** Resolves once the guest process has exited. */
  exited: Promise<number>;
}

/**
 * Starts the relay in the guest as `user` and resolves once its socket listens.
 * `openChannel` is called for each connection to the socket; its stream carries that connection.
 */
export async function startAgentRelay(
  guest: GuestExec,
  dir: string,
  openChannel: () => Promise<Duplex>,
  opts: { link: string; user?: string },
): Promise<AgentRelay> {
  const proc = await guest.exec({ argv: agentRelayArgv(dir, opts.link), user: opts.user ?? "shed", stdin: true });
  const stdin = proc.stdin;
  if (!stdin) throw new Error("agent relay: no stdin");
  const channels = new Map<number, Duplex>();
  // What a connection sent before its channel was open, and whether it already hung up.
  const pending = new Map<number, { data: Buffer[]; closed: boolean }>();
  const send = (type: number, id: number, data?: Buffer) => {
    if (!stdin.writableEnded && !stdin.destroyed) stdin.write(encodeFrame(type, id, data));
  };
  const reader = new FrameReader();
  const errText: Buffer[] = [];
  proc.stderr.on("data", (c: Buffer) => errText.push(c));
  const socketPath = await new Promise<string>((resolve, reject) => {
    proc.stdout.on("data", (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (f.type === FRAME.READY) resolve(f.data.toString("utf8"));
        else if (f.type === FRAME.OPEN) connect(f.id);
        else if (f.type === FRAME.DATA) {
          const p = pending.get(f.id);
          if (p) p.data.push(f.data);
          else channels.get(f.id)?.write(f.data);
        } else if (f.type === FRAME.CLOSE) {
          const p = pending.get(f.id);
          if (p) p.closed = true;
          channels.get(f.id)?.end();
          channels.delete(f.id);
        }
      }
    });
    void proc.exited.then(
      (code) => reject(new Error(`agent relay exited (${code}): ${Buffer.concat(errText).toString().trim()}`)),
      reject,
    );
  });

  function connect(id: number): void {
    pending.set(id, { data: [], closed: false });
    openChannel().then(
      (ch) => {
        const early = pending.get(id);
        pending.delete(id);
        for (const d of early?.data ?? []) ch.write(d);
        if (early?.closed) {
          ch.end();
          return;
        }
        channels.set(id, ch);
        ch.on("data", (d: Buffer) => send(FRAME.DATA, id, d));
        const done = () => {
          if (channels.delete(id)) send(FRAME.CLOSE, id);
        };
        ch.on("end", done);
        ch.on("close", done);
        ch.on("error", done);
      },
      () => {
        pending.delete(id);
        send(FRAME.CLOSE, id);
      },
    );
  }

  return {
    socketPath,
    close: () => {
      for (const ch of channels.values()) ch.destroy();
      channels.clear();
      stdin.end();
    },
    exited: proc.exited,
  };
}
