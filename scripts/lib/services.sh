# shellcheck shell=bash
#
# Helpers used by scripts/test to find, probe, install, start and stop the
# PostgreSQL and Redis instances the test suite needs. Sourced, not executed.
#
# The caller must set, before calling the start_* functions:
#   SERVICES_DIR   where private instances keep their data and logs
# and must call stop_private_services from an EXIT trap.
#
# State set by the functions below (all empty until known):
#   PG_BIN_DIR         directory holding initdb/pg_ctl/postgres
#   REDIS_SERVER_BIN   path of redis-server
#   NGINX_BIN          path of nginx
#   PROMTOOL_BIN       path of promtool
#   PG_PORT, REDIS_PORT              ports of the private instances
#   PG_STARTED, REDIS_STARTED        "1" once we started an instance
#   PG_WORK_DIR, PG_TMP_DIR          private PostgreSQL directories

PG_STARTED=""
REDIS_STARTED=""
PG_WORK_DIR=""
PG_TMP_DIR=""
PG_SOCKET_TMP_DIR=""
PG_DATA_DIR=""
PG_PORT=""
REDIS_PORT=""
REDIS_PID=""
NGINX_BIN="${NGINX_BIN:-}"
APT_UPDATED=""
SERVICES_LOCK_FD=""

# Name used as prefix of every message.
SERVICES_PROG="${SERVICES_PROG:-scripts/test}"

say() { printf '%s: %s\n' "$SERVICES_PROG" "$*"; }
warn() { printf '%s: %s\n' "$SERVICES_PROG" "$*" >&2; }
die() {
	warn "$*"
	exit 1
}

# Prints the last lines of a log file to stderr (for start-up failures).
show_log_tail() {
	local file=$1
	if [[ -r $file ]]; then
		warn "last lines of $file:"
		tail -n 20 "$file" | sed 's/^/    /' >&2
	fi
}

# --------------------------------------------------------------------------
# URLs and ports

# Prints URL with the password (if any) replaced by ***.
mask_url() {
	# shellcheck disable=SC2001 # a regex substitution, not a simple one
	sed -E 's#^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"
}

# Splits URL into the globals URL_USER, URL_PASS, URL_HOST, URL_PORT
# (DEFAULT_PORT when absent). Returns 1 when the URL cannot be parsed.
parse_url() {
	local url=$1 default_port=$2 userinfo
	URL_USER="" URL_PASS="" URL_HOST="" URL_PORT=""
	local re='^[A-Za-z][A-Za-z0-9+.-]*://(([^@/]*)@)?(\[[^]/]*\]|[^:/?#]*)(:([0-9]+))?([/?#].*)?$'
	[[ $1 =~ $re ]] || return 1
	userinfo=${BASH_REMATCH[2]}
	URL_HOST=${BASH_REMATCH[3]}
	URL_PORT=${BASH_REMATCH[5]:-$default_port}
	URL_HOST=${URL_HOST#[}
	URL_HOST=${URL_HOST%]}
	[[ -n $URL_HOST ]] || URL_HOST=localhost
	if [[ $userinfo == *:* ]]; then
		URL_USER=${userinfo%%:*}
		URL_PASS=${userinfo#*:}
	else
		URL_USER=$userinfo
	fi
	[[ -n $url ]]
}

# Succeeds when something accepts TCP connections on HOST:PORT.
tcp_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# Prints a TCP port on 127.0.0.1 that is free right now.
free_port() {
	local port tries
	if command -v python3 >/dev/null 2>&1; then
		port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) && [[ $port =~ ^[0-9]+$ ]] && {
			echo "$port"
			return 0
		}
	fi
	for ((tries = 0; tries < 200; tries++)); do
		port=$((20000 + RANDOM % 40000))
		if ! tcp_open 127.0.0.1 "$port"; then
			echo "$port"
			return 0
		fi
	done
	die "could not find a free TCP port on 127.0.0.1"
}

# --------------------------------------------------------------------------
# Reachability probes

# Succeeds when the PostgreSQL server at URL answers (and, when psql is
# available, accepts our credentials).
pg_reachable() {
	local url=$1
	if command -v psql >/dev/null 2>&1; then
		PGCONNECT_TIMEOUT=5 psql -X -q -A -t -w -d "$url" -c 'select 1' \
			</dev/null >/dev/null 2>&1
	elif command -v pg_isready >/dev/null 2>&1; then
		pg_isready -q -t 5 -d "$url" >/dev/null 2>&1
	else
		parse_url "$url" 5432 && tcp_open "$URL_HOST" "$URL_PORT"
	fi
}

# Sends PING (after AUTH when a password is given) over a raw TCP
# connection; succeeds on +PONG. Runs in its own bash under `timeout`.
redis_ping_tcp() {
	local host=$1 port=$2 user=$3 pass=$4 line fd
	export LC_ALL=C
	exec {fd}<>"/dev/tcp/$host/$port" || return 1
	resp() {
		local arg
		printf '*%d\r\n' "$#"
		for arg in "$@"; do printf '$%d\r\n%s\r\n' "${#arg}" "$arg"; done
	}
	if [[ -n $pass ]]; then
		if [[ -n $user ]]; then resp AUTH "$user" "$pass"; else resp AUTH "$pass"; fi >&"$fd"
		# Like redis-cli: a refused AUTH is not fatal by itself (the server
		# may have no password); PING below tells whether we may talk.
		read -r -t 3 line <&"$fd" || return 1
	fi
	resp PING >&"$fd"
	read -r -t 3 line <&"$fd" || return 1
	[[ $line == +PONG* ]]
}

# Succeeds when the Redis server at URL answers PING.
redis_reachable() {
	local url=$1 reply
	if [[ $url != rediss://* ]] && command -v redis-cli >/dev/null 2>&1; then
		reply=$(timeout 10 redis-cli --no-auth-warning -u "$url" ping </dev/null 2>/dev/null) || return 1
		[[ $reply == PONG ]]
	else
		parse_url "$url" 6379 || return 1
		if [[ $url == rediss://* ]]; then
			# TLS: we cannot speak it from bash; settle for an open port.
			tcp_open "$URL_HOST" "$URL_PORT"
		else
			timeout 10 bash -c "$(declare -f redis_ping_tcp)"'; redis_ping_tcp "$@"' \
				_ "$URL_HOST" "$URL_PORT" "$URL_USER" "$URL_PASS" 2>/dev/null
		fi
	fi
}

# --------------------------------------------------------------------------
# Finding and installing binaries

# Sets PG_BIN_DIR to the newest directory holding initdb and pg_ctl.
find_pg_bin_dir() {
	local dir candidates=() initdb
	if [[ -n ${PG_BIN_DIR:-} && -x $PG_BIN_DIR/initdb && -x $PG_BIN_DIR/pg_ctl ]]; then
		return 0
	fi
	PG_BIN_DIR=""
	# Debian/Ubuntu layout, then RHEL, then a source install; newest first.
	mapfile -t candidates < <(
		{
			compgen -G '/usr/lib/postgresql/*/bin' || true
			compgen -G '/usr/pgsql-*/bin' || true
		} | sort -V -r
	)
	candidates+=(/usr/local/pgsql/bin)
	if initdb=$(command -v initdb 2>/dev/null); then
		candidates+=("$(dirname "$(readlink -f "$initdb")")")
	fi
	for dir in "${candidates[@]}"; do
		if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
			PG_BIN_DIR=$dir
			return 0
		fi
	done
	return 1
}

# Sets REDIS_SERVER_BIN to an executable redis-server.
find_redis_server() {
	local bin
	if [[ -n ${REDIS_SERVER_BIN:-} && -x $REDIS_SERVER_BIN ]]; then
		return 0
	fi
	REDIS_SERVER_BIN=""
	for bin in "$(command -v redis-server 2>/dev/null || true)" /usr/bin/redis-server \
		/usr/local/bin/redis-server /usr/sbin/redis-server; do
		if [[ -n $bin && -x $bin ]]; then
			REDIS_SERVER_BIN=$bin
			return 0
		fi
	done
	return 1
}

# Sets NGINX_BIN to an executable nginx (Debian installs it in /usr/sbin,
# which is not on a normal user's PATH).
find_nginx() {
	local bin
	if [[ -n ${NGINX_BIN:-} && -x $NGINX_BIN ]]; then
		return 0
	fi
	NGINX_BIN=""
	for bin in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx /usr/local/sbin/nginx \
		/usr/local/nginx/sbin/nginx; do
		if [[ -n $bin && -x $bin ]]; then
			NGINX_BIN=$bin
			return 0
		fi
	done
	return 1
}

# Sets PROMTOOL_BIN to an executable promtool (Debian's `prometheus`
# package ships it in /usr/bin).
find_promtool() {
	local bin
	if [[ -n ${PROMTOOL_BIN:-} && -x $PROMTOOL_BIN ]]; then
		return 0
	fi
	PROMTOOL_BIN=""
	for bin in "$(command -v promtool 2>/dev/null || true)" /usr/bin/promtool /usr/local/bin/promtool; do
		if [[ -n $bin && -x $bin ]]; then
			PROMTOOL_BIN=$bin
			return 0
		fi
	done
	return 1
}

# Prints the command prefix that gives us root ("" when we are root,
# "sudo -n" with password-less sudo); fails when there is none.
root_prefix() {
	if [[ $EUID -eq 0 ]]; then
		echo ""
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		echo "sudo -n"
	else
		return 1
	fi
}

# Installs Debian packages with apt-get (running `apt-get update` once per
# run). Fails when apt-get or root rights are missing, or apt-get fails.
apt_install() {
	local prefix log="$SERVICES_DIR/apt.log"
	command -v apt-get >/dev/null 2>&1 || return 1
	prefix=$(root_prefix) || return 1
	mkdir -p "$SERVICES_DIR"
	say "installing $* with apt-get (log: $log)"
	if [[ -z $APT_UPDATED ]]; then
		# shellcheck disable=SC2086 # $prefix is empty or "sudo -n"
		if ! $prefix env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null >"$log" 2>&1; then
			show_log_tail "$log"
			return 1
		fi
		APT_UPDATED=1
	fi
	# shellcheck disable=SC2086
	if ! $prefix env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
		</dev/null >>"$log" 2>&1; then
		show_log_tail "$log"
		return 1
	fi
}

# --------------------------------------------------------------------------
# Running PostgreSQL binaries: initdb and postgres refuse to run as root, so
# as root we run them as the `postgres` system user.

PG_RUN_USER=""

# Ensures the account that runs initdb/postgres exists (root only).
pg_prepare_user() {
	[[ $EUID -eq 0 ]] || return 0
	PG_RUN_USER=postgres
	if ! getent passwd "$PG_RUN_USER" >/dev/null; then
		command -v useradd >/dev/null 2>&1 ||
			die "running as root and there is no 'postgres' user to run PostgreSQL as: create one or run as a normal user"
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$PG_RUN_USER" ||
			die "could not create the 'postgres' system user"
	fi
}

# Runs a command as the PostgreSQL user (from / so that an unreadable
# current directory does not matter).
as_pg() {
	if [[ -z $PG_RUN_USER ]]; then
		"$@"
	elif command -v runuser >/dev/null 2>&1; then
		(cd / && runuser -u "$PG_RUN_USER" -- "$@")
	else
		(cd / && su -s /bin/bash "$PG_RUN_USER" -c "$(printf '%q ' "$@")")
	fi
}

# Makes DIR (created if needed) owned by the PostgreSQL user.
pg_own() {
	mkdir -p "$1"
	if [[ -n $PG_RUN_USER ]]; then
		chown "$PG_RUN_USER:" "$1"
	fi
}

# Quotes a value for postgresql.conf.
pg_conf_quote() {
	local v=${1//\\/\\\\}
	printf "'%s'" "${v//\'/\'\'}"
}

# Stops a postgres left running in our directory by an earlier, interrupted
# run of this script (it was started by us, nobody else uses that path).
pg_stop_stale() {
	local data=$1
	if [[ -f $data/postmaster.pid && -n $PG_BIN_DIR ]]; then
		warn "stopping PostgreSQL left over from an earlier run in $data"
		as_pg "$PG_BIN_DIR/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
}

# Initialises and starts a throw-away cluster under $SERVICES_DIR/pg on a
# free loopback port. Sets PG_PORT and PG_STARTED.
start_private_pg() {
	local dir="$SERVICES_DIR/pg" sockdir log conf attempt
	pg_prepare_user

	pg_stop_stale "$dir/data"
	rm -rf "$dir"
	mkdir -p "$SERVICES_DIR"
	pg_own "$dir"
	# The data directory must be reachable by the postgres user: a checkout
	# under /root (mode 700) is not, so fall back to a directory in /tmp.
	if ! as_pg test -w "$dir" -a -x "$dir" 2>/dev/null; then
		PG_TMP_DIR=$(mktemp -d /tmp/storefront-test-pg.XXXXXX)
		pg_own "$PG_TMP_DIR"
		dir=$PG_TMP_DIR
	fi
	# shellcheck disable=SC2034 # shown by scripts/test
	PG_WORK_DIR=$dir
	PG_DATA_DIR="$dir/data"
	log="$dir/postgres.log"

	# Unix socket paths are limited to ~107 bytes.
	sockdir=$dir
	if ((${#sockdir} > 80)); then
		PG_SOCKET_TMP_DIR=$(mktemp -d /tmp/storefront-test-pgsock.XXXXXX)
		pg_own "$PG_SOCKET_TMP_DIR"
		sockdir=$PG_SOCKET_TMP_DIR
	fi

	if ! as_pg "$PG_BIN_DIR/initdb" -D "$PG_DATA_DIR" --username=postgres --auth=trust \
		--encoding=UTF8 --locale=C --no-sync >"$SERVICES_DIR/initdb.log" 2>&1; then
		show_log_tail "$SERVICES_DIR/initdb.log"
		die "initdb failed (see $SERVICES_DIR/initdb.log)"
	fi

	conf="$PG_DATA_DIR/postgresql.conf"
	# Appended as root keeps the file's owner; later settings win.
	cat >>"$conf" <<-EOF

		# --- scripts/test: throw-away cluster, speed over durability ---
		listen_addresses = '127.0.0.1'
		unix_socket_directories = $(pg_conf_quote "$sockdir")
		max_connections = 300
		shared_buffers = 128MB
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		wal_level = minimal
		max_wal_senders = 0
		max_wal_size = 1GB
		checkpoint_timeout = 30min
		max_parallel_workers_per_gather = 0
		log_min_messages = warning
		log_min_error_statement = panic
	EOF

	for ((attempt = 1; attempt <= 5; attempt++)); do
		PG_PORT=$(free_port)
		if as_pg "$PG_BIN_DIR/pg_ctl" -D "$PG_DATA_DIR" -l "$log" -w -t 60 \
			-o "-p $PG_PORT" start >/dev/null 2>&1 {SERVICES_LOCK_FD}>&-; then
			PG_STARTED=1
			return 0
		fi
		# Someone grabbed the port between free_port and the bind: retry.
		if ! grep -q 'Address already in use' "$log" 2>/dev/null; then
			break
		fi
	done
	show_log_tail "$log"
	die "could not start PostgreSQL from $PG_BIN_DIR (see $log)"
}

stop_private_pg() {
	[[ -n $PG_STARTED ]] || return 0
	PG_STARTED=""
	if ! as_pg "$PG_BIN_DIR/pg_ctl" -D "$PG_DATA_DIR" -m immediate -w -t 30 stop >/dev/null 2>&1; then
		warn "could not stop the private PostgreSQL (data: $PG_DATA_DIR)"
		return 0
	fi
	# Keep the log for post-mortems, drop the (possibly large) data.
	rm -rf "$PG_DATA_DIR"
	[[ -z $PG_TMP_DIR ]] || rm -rf "$PG_TMP_DIR"
	[[ -z $PG_SOCKET_TMP_DIR ]] || rm -rf "$PG_SOCKET_TMP_DIR"
}

# --------------------------------------------------------------------------
# Redis

# Succeeds when PID is alive and runs redis-server.
is_redis_pid() {
	local pid=$1 comm
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	comm=$(cat "/proc/$pid/comm" 2>/dev/null || ps -o comm= -p "$pid" 2>/dev/null || true)
	[[ $comm == redis-server* || $comm == redis-check* ]]
}

# Asks the redis-server with PID on PORT to exit, then waits for it.
redis_kill() {
	local pid=$1 port=$2 i
	if command -v redis-cli >/dev/null 2>&1; then
		timeout 5 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave </dev/null >/dev/null 2>&1 || true
	fi
	is_redis_pid "$pid" && kill "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		is_redis_pid "$pid" || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
}

# Starts a throw-away, non-persistent redis-server under
# $SERVICES_DIR/redis on a free loopback port. Sets REDIS_PORT and
# REDIS_STARTED.
start_private_redis() {
	local dir="$SERVICES_DIR/redis" log pidfile attempt i stale ready
	log="$dir/redis.log"
	pidfile="$dir/redis.pid"

	# A redis-server left over by an earlier, interrupted run.
	if [[ -f $pidfile ]]; then
		stale=$(<"$pidfile")
		if is_redis_pid "$stale"; then
			warn "stopping Redis left over from an earlier run (pid $stale)"
			redis_kill "$stale" 0
		fi
	fi
	rm -rf "$dir"
	mkdir -p "$dir"

	for ((attempt = 1; attempt <= 5; attempt++)); do
		REDIS_PORT=$(free_port)
		rm -f "$pidfile"
		: >"$log"
		"$REDIS_SERVER_BIN" --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
			--save "" --appendonly no --dir "$dir" --daemonize yes \
			--pidfile "$pidfile" --logfile "$log" </dev/null >/dev/null 2>&1 {SERVICES_LOCK_FD}>&- || true
		ready=""
		for ((i = 0; i < 100; i++)); do
			if redis_reachable "redis://127.0.0.1:$REDIS_PORT" && [[ -s $pidfile ]]; then
				ready=1
				break
			fi
			if grep -qE 'Address already in use|Could not create server TCP|Fatal|FATAL' "$log" 2>/dev/null; then
				break
			fi
			sleep 0.1
		done
		if [[ -n $ready ]]; then
			REDIS_PID=$(<"$pidfile")
			REDIS_STARTED=1
			return 0
		fi
		# The daemon may still be starting up: don't leave it behind.
		if [[ -s $pidfile ]] && is_redis_pid "$(<"$pidfile")"; then
			redis_kill "$(<"$pidfile")" "$REDIS_PORT"
		fi
		grep -q 'Address already in use' "$log" 2>/dev/null || break
	done
	show_log_tail "$log"
	die "could not start $REDIS_SERVER_BIN (see $log)"
}

stop_private_redis() {
	[[ -n $REDIS_STARTED ]] || return 0
	REDIS_STARTED=""
	redis_kill "$REDIS_PID" "$REDIS_PORT"
	if is_redis_pid "$REDIS_PID"; then
		warn "could not stop the private Redis (pid $REDIS_PID)"
	fi
}

# --------------------------------------------------------------------------
# Locking: two runs in the same checkout would wipe each other's instances.

# Must run before the start_* functions: they close the lock descriptor in
# the servers they spawn, so a leaked server never holds the lock.
lock_services_dir() {
	mkdir -p "$SERVICES_DIR"
	exec {SERVICES_LOCK_FD}>"$SERVICES_DIR/.lock"
	command -v flock >/dev/null 2>&1 || return 0
	if ! flock -n "$SERVICES_LOCK_FD"; then
		say "waiting for another scripts/test run in this checkout to finish..."
		flock "$SERVICES_LOCK_FD"
	fi
}

stop_private_services() {
	stop_private_redis || true
	stop_private_pg || true
}
