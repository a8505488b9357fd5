#!/usr/bin/env bash
# Builds the linux/arm64 bootstrap exactly as `sam build` does (the Makefile's
# build-AutoTaggerFunction flags), zips it as the deployment package, and
# prints both sizes against the targets (MAX_BINARY bytes, 10 MB, and
# MAX_ZIP, 4 MB) and the AWS SDK modules linked into it. With --check it
# exits 1 when a size is over its target.
set -euo pipefail

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: bench/size.sh [--check]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
GO=${GO:-go}
MAX_BINARY=${MAX_BINARY:-10000000}
MAX_ZIP=${MAX_ZIP:-4000000}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

GOOS=linux GOARCH=arm64 CGO_ENABLED=0 "$GO" build -trimpath -tags lambda.norpc,lambdaonly -ldflags="-s -w" \
  -o "$out/bootstrap" ./cmd/autotagger

# The deployment package: bootstrap at the root of the zip, deflated at the
# default level, as sam and `zip` make it.
if command -v zip >/dev/null; then
  (cd "$out" && zip -q -X bootstrap.zip bootstrap)
elif command -v python3 >/dev/null; then
  (cd "$out" && python3 -c 'import zipfile; z = zipfile.ZipFile("bootstrap.zip", "w", zipfile.ZIP_DEFLATED); z.write("bootstrap"); z.close()')
else
  echo "size.sh needs zip or python3 to make the deployment package" >&2
  exit 1
fi

binary=$(stat -c %s "$out/bootstrap")
zipped=$(stat -c %s "$out/bootstrap.zip")
mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB (%.2f MiB)", b / 1000000, b / 1048576 }'; }
verdict() { if (( $1 > $2 )); then echo "OVER the target of $(mb "$2")"; else echo "within the target of $(mb "$2")"; fi; }

echo "bootstrap linux/arm64: $binary bytes, $(mb "$binary"): $(verdict "$binary" "$MAX_BINARY")"
echo "bootstrap.zip:         $zipped bytes, $(mb "$zipped"): $(verdict "$zipped" "$MAX_ZIP")"
echo "modules linked: $("$GO" version -m "$out/bootstrap" | awk '$1 == "dep"' | wc -l), of which the AWS SDK, smithy and the Lambda runtime:"
"$GO" version -m "$out/bootstrap" | awk '$1 == "dep" && $2 ~ /^github.com\/aws\// { printf "  %s %s\n", $2, $3 }'

if (( check && (binary > MAX_BINARY || zipped > MAX_ZIP) )); then
  exit 1
fi
