# shellcheck shell=bash
#
# Helpers used by scripts/test for the browser tests (api/tests/api/
# playground.rs): the GraphiQL assets the api serves, and the Chromium and
# chromedriver that open them. Sourced after services.sh, whose say/warn/die
# and apt_install they use.
#
# Exported to the tests:
#   CHROMEDRIVER   path of chromedriver (it finds Chromium by itself)

# Builds playground/dist with playground/build.sh (npm ci + copy) unless it
# was built from the current package-lock.json: build.sh records the lock's
# SHA-256 in dist/.package-lock.sha256. Installs nodejs and npm with apt-get
# when npm is missing.
ensure_playground_assets() {
	local dir="$ROOT/playground" log="$SERVICES_DIR/playground-build.log" want have=""
	want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
	if [[ -r $dir/dist/.package-lock.sha256 ]]; then
		have=$(<"$dir/dist/.package-lock.sha256")
	fi
	[[ $have != "$want" ]] || return 0

	if ! command -v npm >/dev/null 2>&1; then
		apt_install nodejs npm ||
			die "npm not found: install Node.js and npm (apt-get install nodejs npm) to build the GraphiQL assets"
	fi
	say "playground: building the GraphiQL assets with playground/build.sh (log: $log)"
	mkdir -p "$SERVICES_DIR"
	if ! "$dir/build.sh" </dev/null >"$log" 2>&1; then
		show_log_tail "$log"
		die "playground/build.sh failed (see $log)"
	fi
}

# Installs a Node package directory's dependencies (npm ci) unless its
# node_modules was installed from the current package-lock.json. Used for
# examples/web-client (the example client's test runs it) and
# api/tests/audit (graphql-http's audit of the transport).
#   $1 directory, relative to the repository root
ensure_npm_packages() {
	local dir="$ROOT/$1" log="$SERVICES_DIR/npm-${1//\//-}.log" want have=""
	want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
	if [[ -r $dir/node_modules/.package-lock.sha256 ]]; then
		have=$(<"$dir/node_modules/.package-lock.sha256")
	fi
	[[ $have != "$want" ]] || return 0
	if ! command -v npm >/dev/null 2>&1; then
		apt_install nodejs npm ||
			die "npm not found: install Node.js and npm (apt-get install nodejs npm) for $1"
	fi
	say "npm: npm ci in $1 (log: $log)"
	mkdir -p "$SERVICES_DIR"
	if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) </dev/null >"$log" 2>&1; then
		show_log_tail "$log"
		die "npm ci in $1 failed (see $log)"
	fi
	echo "$want" >"$dir/node_modules/.package-lock.sha256"
}

# Sets and exports CHROMEDRIVER, installing the Debian packages chromium and
# chromium-driver when chromedriver or chromium is missing.
ensure_chromium() {
	local driver=${CHROMEDRIVER:-}
	if [[ -z $driver || ! -x $driver ]]; then
		driver=$(command -v chromedriver 2>/dev/null || true)
	fi
	if [[ -z $driver ]] || ! command -v chromium >/dev/null 2>&1; then
		apt_install chromium chromium-driver ||
			die "Chromium not found: install chromium and chromium-driver (apt-get install chromium chromium-driver) for the browser tests"
		driver=$(command -v chromedriver 2>/dev/null) ||
			die "chromium-driver is installed but chromedriver is not on PATH: set CHROMEDRIVER"
	fi
	CHROMEDRIVER=$driver
	export CHROMEDRIVER
	say "browser: $("$CHROMEDRIVER" --version 2>/dev/null | cut -d' ' -f1-2 || echo "$CHROMEDRIVER")"
}
