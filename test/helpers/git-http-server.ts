/**
 * A git server for tests, run as `perl -e HTTP_SERVER MODE` in a container the
 * test makes (shed-base has perl-base), on port 8080; EXPECT_AUTH in its
 * environment is the Basic credentials it wants. A request without them gets
 * a 401 (that is how git learns it must ask its credential helper). With
 * them, MODE "hang" writes /tmp/authed and never answers; "serve" sends the
 * file under /srv. Files only, no CGI: git's dumb HTTP protocol.
 */
export const HTTP_SERVER = String.raw`
use strict; use warnings; use IO::Socket::INET;
my $mode = $ARGV[0]; my $want = "Basic $ENV{EXPECT_AUTH}";
my $srv = IO::Socket::INET->new(LocalPort => 8080, Listen => 32, ReuseAddr => 1) or die "listen: $!";
open(my $r, ">", "/tmp/ready") or die; close $r;
my @held;
sub reply { my ($c, $status, $body, @h) = @_; print $c join("\r\n", "HTTP/1.1 $status", @h, "Content-Length: " . length($body), "Connection: close", "", "") . $body; close $c; }
while (my $c = $srv->accept) {
  binmode $c;
  my $line = <$c>; next unless defined $line;
  my %h;
  while (my $l = <$c>) { $l =~ s/\r?\n\z//; last if $l eq ""; my ($k, $v) = split /:\s*/, $l, 2; $h{lc $k} = $v; }
  my (undef, $target) = split / /, $line;
  if (($h{authorization} // "") ne $want) { reply($c, "401 Unauthorized", "", "WWW-Authenticate: Basic realm=\"shed-test\""); next; }
  if ($mode eq "hang") { open(my $m, ">", "/tmp/authed") or die; print $m $target; close $m; push @held, $c; next; }
  (my $path = $target) =~ s/\?.*//s;
  my $file = "/srv$path";
  if ($path =~ /\.\./ || !-f $file) { reply($c, "404 Not Found", ""); next; }
  open(my $f, "<:raw", $file) or die; my $body = do { local $/; <$f> }; close $f;
  reply($c, "200 OK", $body, "Content-Type: application/octet-stream");
}`;
