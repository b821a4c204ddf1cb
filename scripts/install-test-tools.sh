#!/usr/bin/env bash
# Installs the Debian tools the test suite talks to as real peers: swaks (SMTP client),
# Postfix's smtp-source/smtp-sink, Python's aiosmtpd (receiving server), dnsmasq (DNS) and
# OpenBSD netcat (`nc -N`, a client that half-closes).
# Runs as part of `npm test`; does nothing when everything is present. Without root
# (or apt-get) it only warns: the tests that need a missing tool are then skipped
# with a message naming it.
set -euo pipefail

need=()
command -v swaks >/dev/null 2>&1 || need+=(swaks)
[ -x /usr/sbin/smtp-sink ] && [ -x /usr/sbin/smtp-source ] || need+=(postfix)
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need+=(python3-aiosmtpd)
[ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
[ -x /usr/bin/nc.openbsd ] || need+=(netcat-openbsd)

[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-tools: missing ${need[*]}; install them (Debian: apt-get install ${need[*]}) or the tests that use them are skipped" >&2
  exit 0
fi

echo "install-test-tools: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure itself; we only want its test tools.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
