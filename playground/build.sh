#!/usr/bin/env bash
#
# playground/build.sh — builds the GraphiQL assets the api serves at
# /playground/assets/ into playground/dist/ (gitignored).
#
# `npm ci` installs exactly what package-lock.json pins (graphiql 3 and the
# React 18 it runs on); then the four browser files are copied out. GraphiQL 3
# is the last major that ships a UMD bundle: it runs from plain <script> tags
# with React's UMD builds, so the api serves files and no bundler is needed.
#
# Usage: playground/build.sh        (needs node and npm; the npm registry is
#                                    reached only by `npm ci`)

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
cd "$HERE"

# Keep in step with ASSETS in api/src/http/playground.rs.
FILES=(
	node_modules/graphiql/graphiql.min.js
	node_modules/graphiql/graphiql.min.css
	node_modules/react/umd/react.production.min.js
	node_modules/react-dom/umd/react-dom.production.min.js
)

npm ci --no-audit --no-fund --loglevel=error

# Copied into a fresh directory that replaces dist/ at the end, so a failed
# build never leaves a half-filled dist/ that the api would serve.
tmp=$(mktemp -d "$HERE/node_modules/.dist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for file in "${FILES[@]}"; do
	cp "$file" "$tmp/"
done
# What scripts/test compares to know whether dist/ is up to date.
sha256sum package-lock.json | cut -d' ' -f1 >"$tmp/.package-lock.sha256"
rm -rf dist
mv "$tmp" dist
chmod 755 dist
trap - EXIT
echo "playground/build.sh: built ${#FILES[@]} files into $HERE/dist"
