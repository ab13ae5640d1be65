#!/usr/bin/perl
# readers_cmf.pl — Cache::Memcached::Fast as a reader for tests/readers.py.
#
#   perl readers_cmf.pl HOST:PORT... < keys
#
# Reads one key a line from stdin, gets them all (500 at a time) from the
# servers with the client's defaults (no ketama_points: its
# Cache::Memcached-compatible crc placement, no namespace) and prints
# "key<TAB>value as hex" for each key found.
use strict;
use warnings;

use Cache::Memcached::Fast;

die "usage: $0 HOST:PORT...\n" unless @ARGV;
my $mc = Cache::Memcached::Fast->new({servers => [@ARGV], utf8 => 0});
my @keys = map { chomp; $_ } <STDIN>;
while (my @part = splice(@keys, 0, 500)) {
    my $got = $mc->get_multi(@part);
    for my $k (@part) {
        print "$k\t", unpack("H*", $got->{$k}), "\n" if exists $got->{$k};
    }
}
$mc->disconnect_all;
