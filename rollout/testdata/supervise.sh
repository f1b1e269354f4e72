#!/usr/bin/env bash
# supervise.sh ENV_FILE PID_FILE COMMAND [ARG...]
#
# A tiny service manager for the rollout tests, standing in for systemd: it
# runs COMMAND with the KEY=VALUE lines of ENV_FILE exported, and
#   SIGHUP   restarts it, re-reading ENV_FILE (systemctl restart)
#   SIGUSR1  stops it and leaves it stopped until the next SIGHUP
#   SIGTERM  stops it and exits
# Extra arguments for COMMAND can come from ENV_FILE as SUPERVISE_EXTRA_ARGS.
# Its own pid goes to PID_FILE so remote commands can signal it, and the
# running child's to PID_FILE.child.
set -u
envfile=$1
pidfile=$2
shift 2

child=""
want_restart=0
want_stop=0
want_exit=0
trap 'want_restart=1' HUP
trap 'want_stop=1' USR1
trap 'want_exit=1' TERM INT

start() {
	(
		set -a
		SUPERVISE_EXTRA_ARGS=""
		if [ -f "$envfile" ]; then
			. "$envfile"
		fi
		set +a
		# shellcheck disable=SC2086 # split on purpose
		exec "$@" $SUPERVISE_EXTRA_ARGS
	) &
	child=$!
	echo "$child" >"$pidfile.child"
	echo "$(date -u +%FT%T.%NZ) supervise: started pid $child" >&2
}

stop() {
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null
		wait "$child" 2>/dev/null
		echo "$(date -u +%FT%T.%NZ) supervise: stopped pid $child" >&2
		child=""
	fi
}

echo $$ >"$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
start "$@"
while :; do
	if [ -n "$child" ]; then
		wait "$child"
		# wait returns early when a trapped signal arrives; the child is
		# gone only if it cannot be signalled any more.
		if ! kill -0 "$child" 2>/dev/null; then
			echo "$(date -u +%FT%T.%NZ) supervise: pid $child exited" >&2
			child=""
		fi
	else
		sleep 0.1 &
		wait $!
	fi
	if [ $want_exit = 1 ]; then
		stop
		exit 0
	fi
	if [ $want_stop = 1 ]; then
		want_stop=0
		stop
	fi
	if [ $want_restart = 1 ]; then
		want_restart=0
		stop
		start "$@"
	fi
done
