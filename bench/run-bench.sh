#!/usr/bin/env bash
# Benchmark Mailgate against the anchor servers, using the shared harness
# (${MAILGATE_SHARED:-<repo>/../shared}/bench). `npm run bench` calls this script.
#
#   npm run bench                          # discard mode, 3 interleaved reps (~8-10 min)
#   npm run bench -- --quick               # smoke test: small counts, 1 rep (~1-2 min)
#   npm run bench -- --mode all            # discard, then maildir (~2x the time)
#   npm run bench -- --only haraka,smtp-server-nodelay --reps 5
#   npm run bench -- --no-build --scenarios 1k_c1,1k_c50 --cap 6 -- --noise-threshold 0.5
#
# Options (or the environment variable in brackets):
#   --mode discard|maildir|relay|spam|all  [BENCH_MODE]   default discard; relay runs plugin-relay's driver;
#                                              spam = discard mode with plugin-spam scanning (not in all)
#   --only LIST                 [BENCH_ONLY]   anchors to run beside mailgate, default
#                                              smtp-sink,haraka,smtp-server-nodelay; "none" = mailgate only;
#                                              also: smtp-server, aiosmtpd, aiosmtpd-raw (maildir only)
#   --reps N                    [BENCH_REPS]   interleaved repetitions, default 3 (1 with --quick)
#   --quick                     [BENCH_QUICK=1]  small message counts, 5 s caps, 500 idle conns
#   --scenarios LIST, --cap S   passed to anchors.sh
#   --no-build                  [BENCH_BUILD=0]  skip `npm run build`
#   --tag TAG                   results file prefix, default mailgate-<mode>-<date>
#   --maildir-fs journal        [BENCH_MAILDIR_FS]  maildir mode on a fresh journaled ext4 (a loop-mounted
#                                              4 GiB image at /tmp/bench-maildir, root only) for every
#                                              server alike; default: whatever /tmp is on (see README)
#   -- ARGS...                  everything after -- goes to anchors.sh verbatim
#                               (e.g. --noise-threshold 0.5 --quiet-wait 30)
# Results: ${BENCH_RESULTS:-<repo>/bench/results}/run-<tag>.{md,jsonl,env.json,log};
# server logs: /tmp/bench-logs/<tag>/.  The exit status is non-zero if mailgate failed any scenario.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${MAILGATE_SHARED:-$ROOT/../shared}
HARNESS=$SHARED/bench
export ANCHORS_DIR=${ANCHORS_DIR:-/tmp/anchors}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3

MODE=${BENCH_MODE:-discard}
ONLY=${BENCH_ONLY:-smtp-sink,haraka,smtp-server-nodelay}
REPS=${BENCH_REPS:-}
QUICK=${BENCH_QUICK:-0}
BUILD=${BENCH_BUILD:-1}
MAILDIR_FS=${BENCH_MAILDIR_FS:-}
TAG=
PASS=()

usage() { sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "run-bench: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        --mode) MODE=${2:?}; shift 2 ;;
        --mode=*) MODE=${1#*=}; shift ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --reps) REPS=${2:?}; shift 2 ;;
        --reps=*) REPS=${1#*=}; shift ;;
        --quick) QUICK=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --tag) TAG=${2:?}; shift 2 ;;
        --tag=*) TAG=${1#*=}; shift ;;
        --maildir-fs) MAILDIR_FS=${2:?}; shift 2 ;;
        --maildir-fs=*) MAILDIR_FS=${1#*=}; shift ;;
        --scenarios|--cap) PASS+=("$1" "${2:?}"); shift 2 ;;
        --scenarios=*|--cap=*) PASS+=("$1"); shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; PASS+=("$@"); break ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done
case $MODE in discard|maildir|relay|spam|all) ;; *) die "--mode must be discard, maildir, relay, spam or all (got '$MODE')" ;; esac
case $MAILDIR_FS in ''|tmp|journal) ;; *) die "--maildir-fs must be journal or tmp (got '$MAILDIR_FS')" ;; esac
[ -n "$REPS" ] || { [ "$QUICK" = 1 ] && REPS=1 || REPS=3; }
[ -x "$HARNESS/anchors.sh" ] || die "harness not found: $HARNESS/anchors.sh (set MAILGATE_SHARED)"

cd "$ROOT"

MODES=()
RELAY=0
case $MODE in
    relay) RELAY=1 ;;
    discard) MODES=(discard) ;;
    spam) MODES=(spam) ;;
    maildir) [ -f bench/gateway-maildir.yaml ] || die "bench/gateway-maildir.yaml does not exist yet"
             MODES=(maildir) ;;
    all) MODES=(discard); RELAY=1
         if [ -f bench/gateway-maildir.yaml ]; then MODES+=(maildir)
         else echo "run-bench: bench/gateway-maildir.yaml not found - skipping maildir mode" >&2; fi ;;
esac

# ---- tools (smtp-source/smtp-sink, aiosmtpd, swaks) and anchors (Haraka, smtp-server)
tools_ok() {
    { command -v smtp-source || [ -x /usr/sbin/smtp-source ]; } >/dev/null &&
    { command -v smtp-sink || [ -x /usr/sbin/smtp-sink ]; } >/dev/null &&
    /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null && command -v swaks >/dev/null
}
anchors_ok() {
    [ -x "$ANCHORS_DIR/node_modules/.bin/haraka" ] &&
    [ -f "$ANCHORS_DIR/node_modules/smtp-server/package.json" ] &&
    [ -f "$ANCHORS_DIR/haraka-discard/config/smtp.ini" ] &&
    [ -f "$ANCHORS_DIR/haraka-maildir/config/smtp.ini" ]
}
if ! tools_ok; then
    [ "$(id -u)" = 0 ] || die "smtp-source/aiosmtpd/swaks missing; run $HARNESS/install-tools.sh as root"
    echo "run-bench: installing tools ($HARNESS/install-tools.sh)"
    "$HARNESS/install-tools.sh"
fi
if ! anchors_ok; then
    echo "run-bench: installing anchors into $ANCHORS_DIR ($HARNESS/setup-anchors.sh)"
    "$HARNESS/setup-anchors.sh"
fi

# ---- build, and make sure `npx mailgate` resolves to OUR bin.  npm links a workspace
# bin only if its target exists at install time, so after a first build the link may
# be missing; without it npx would fetch an unrelated `mailgate` package from the registry.
if [ "$BUILD" = 1 ]; then
    echo "run-bench: npm run build"
    npm run build
fi
if [ ! -x node_modules/.bin/mailgate ]; then
    echo "run-bench: linking workspace bins (npm rebuild --ignore-scripts)"
    npm rebuild --ignore-scripts >/dev/null
fi
[ -x node_modules/.bin/mailgate ] || die "node_modules/.bin/mailgate missing after build (is the CLI built?)"

# ---- maildir mode's file system. The harness writes into /tmp/bench-maildir/<server>/.
# This VM's root ext4 has no journal, and there every file create scans past the inodes
# deleted in the last minutes (ext4's recently_deleted(), only checked without a journal):
# after the harness clears a scenario's files, creates cost several times more, for every
# server, by an amount that depends on what ran before (bench/README.md "Results").
# --maildir-fs journal puts all servers on a fresh ext4 with a journal, as a mail spool
# normally is.
MOUNTED=
unmount_fs() { [ -n "$MOUNTED" ] && { umount /tmp/bench-maildir && rm -f "$MOUNTED"; } || true; }
if [ "$MAILDIR_FS" = journal ] && [[ " ${MODES[*]-} " == *" maildir "* ]]; then
    [ "$(id -u)" = 0 ] || die "--maildir-fs journal needs root (mkfs + loop mount)"
    ! mountpoint -q /tmp/bench-maildir || die "/tmp/bench-maildir is already a mount point; umount it first"
    img=$(mktemp /tmp/bench-maildir-fs.XXXXXX.img)
    truncate -s 4G "$img" && mkfs.ext4 -q -F "$img" || die "mkfs.ext4 failed"
    mkdir -p /tmp/bench-maildir && mount -o loop "$img" /tmp/bench-maildir || die "loop mount of $img failed"
    MOUNTED=$img
    trap unmount_fs EXIT
    echo "run-bench: maildir mode on a fresh journaled ext4: $img on /tmp/bench-maildir"
fi

# the idle scenario holds 2,000 sockets; servers inherit this limit
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$RESULTS"
STAMP=$(date +%Y%m%d-%H%M%S)
QROOT=$(printf '%q' "$ROOT")
# The harness runs server commands with `bash -c` in ITS OWN cwd (the caller's),
# so cd to the repo root explicitly.  `npx --no --` never installs from the registry.
# No braces other than {host}/{port}: the harness expands the command with str.format.
server_cmd() { echo "cd $QROOT && exec npx --no -- mailgate serve -c bench/gateway-$1.yaml --listen {host}:{port}"; }

RC=0
MDS=()
for m in ${MODES[@]+"${MODES[@]}"}; do
    tag=${TAG:-mailgate-$m-$STAMP}
    [ -n "$TAG" ] && [ ${#MODES[@]} -gt 1 ] && tag=$TAG-$m
    [ "$QUICK" = 1 ] && [ -z "$TAG" ] && tag=$tag-quick
    # spam mode is the harness's discard mode, with plugin-spam in front of the discard plugin
    hm=$m; [ "$m" = spam ] && hm=discard
    args=(--mode "$hm" --reps "$REPS" --only "$ONLY" --results "$RESULTS" --tag "$tag")
    [ "$QUICK" = 1 ] && args+=(--quick)
    if [ "$m" = discard ]; then args+=(--server "mailgate=$(server_cmd discard)")
    elif [ "$m" = spam ]; then
        # Bayes needs 200 spam and 200 ham before it scores: train it once on the public corpus
        export BENCH_BAYES=${BENCH_BAYES:-/tmp/mailgate-bench-bayes.db}
        if [ ! -s "$BENCH_BAYES" ]; then
            corpus=$(mktemp -d /tmp/mailgate-bench-corpus.XXXXXX)
            tar -xzf "$SHARED/data/spamassassin-public-corpus/sa-public-corpus-5groups.tar.gz" -C "$corpus"
            npx --no -- mailgate spam train -c bench/gateway-spam.yaml --spam "$corpus/spam-2" --ham "$corpus/easy-ham-1" || RC=1
            rm -rf "$corpus"
        fi
        args+=(--server "mailgate=$(server_cmd spam)" --server "mailgate-nospam=$(server_cmd discard)")
    else args+=(--maildir-server "mailgate=$(server_cmd maildir)"); fi
    echo "run-bench: $HARNESS/anchors.sh ${args[*]} ${PASS[*]-}"
    set +e
    "$HARNESS/anchors.sh" "${args[@]}" ${PASS[@]+"${PASS[@]}"} 2>&1 | tee "$RESULTS/run-$tag.log"
    hrc=${PIPESTATUS[0]}
    set -e
    [ "$hrc" = 0 ] || { echo "run-bench: anchors.sh exited $hrc (mode $m)" >&2; RC=1; }
    jsonl=$RESULTS/run-$tag.jsonl
    [ -f "$RESULTS/run-$tag.md" ] && MDS+=("$RESULTS/run-$tag.md")
    # anchors.sh exits 0 even when a server fails to start: check mailgate's records
    if ! "$PY" - "$jsonl" "/tmp/bench-logs/$tag/mailgate-$hm.log" <<'EOF'
import json, sys
try:
    recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
except OSError:
    recs = []
mine = [r for r in recs if r.get('label') == 'mailgate' and r.get('scenario') != 'warmup']
good = [r for r in mine if r.get('ok')]
bad = [r for r in mine if not r.get('ok') and not r.get('retried')]
print(f"run-bench: mailgate: {len(good)} ok, {len(bad)} failed scenario runs")
for r in bad:
    why = r.get('error') or r.get('skipped') or (r.get('stderr') or '')[:200] or 'see record'
    print(f"  FAILED {r.get('scenario')} rep {r.get('rep')}: {why}")
if bad or not good:
    print(f"  server log: {sys.argv[2]}")
    sys.exit(1)
EOF
    then RC=1; fi
done

# ---- relay: accept -> durable queue -> delivered into smtp-sink, and the queue's memory
# with 100,000 queued messages (plugin-relay's own driver; the harness has no relay mode).
if [ "$RELAY" = 1 ]; then
    md=$RESULTS/run-mailgate-relay-$STAMP.md
    n=2000; q=100000
    [ "$QUICK" = 1 ] && { n=500; q=20000; }
    {
        echo "## mode: relay"
        echo
        echo '```'
        node packages/plugin-relay/bench/relay-bench.mjs throughput "$n" 20
        node --expose-gc packages/plugin-relay/bench/relay-bench.mjs memory "$q"
        echo '```'
    } 2>&1 | tee "$md" || RC=1
    MDS+=("$md")
fi

echo
echo "==================== results ($RESULTS) ===================="
for md in ${MDS[@]+"${MDS[@]}"}; do
    echo
    echo "# $(basename "$md")"
    cat "$md"
done
exit $RC
