#!/usr/bin/env bash
# Generates a C# client from docs/openapi.json with Kiota (a dotnet tool), builds it, and runs the
# smoke scenario against a running server. Usage: bash tests/KiotaSmoke/run.sh <base-url> <admin-password>
set -euo pipefail
cd "$(dirname "$0")"
KIOTA_VERSION=1.38.0
TOOLS=$(mktemp -d /tmp/kiota-tool.XXXXXX)
dotnet tool install Microsoft.OpenApi.Kiota --version "$KIOTA_VERSION" --tool-path "$TOOLS" >/dev/null
rm -rf Generated
# The update check needs the internet; its failure is only a warning.
KIOTA_UPDATE_DISABLED=true "$TOOLS/kiota" generate -l CSharp -d ../../docs/openapi.json -o Generated -c FundamentApiClient \
  -n Fundament.KiotaSmoke.Client --exclude-backward-compatible --log-level Error >/dev/null 2>&1 || {
  KIOTA_UPDATE_DISABLED=true "$TOOLS/kiota" generate -l CSharp -d ../../docs/openapi.json -o Generated -c FundamentApiClient \
    -n Fundament.KiotaSmoke.Client --exclude-backward-compatible --log-level Warning; exit 1; }
echo "kiota: $(find Generated -name '*.cs' | wc -l) files generated"
dotnet build -v quiet -nologo -o "$TOOLS/bin" 2>&1 | grep -E "error|Build succeeded" || true
dotnet "$TOOLS/bin/KiotaSmoke.dll" "$1" "$2"
