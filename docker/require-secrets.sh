#!/bin/sh
# Entry point wrapper: refuse to start while a secret this service needs is empty or still the
# `change-me-*` placeholder of .env.example, then run the service (exec "$@").
# The variables to check are named (not given) in DRIFTLINE_CHECKED_VARS; values are never printed.
set -eu
for name in ${DRIFTLINE_CHECKED_VARS:-}; do
    eval "value=\${$name:-}"
    case "$value" in
        "")
            echo "driftline: $name is empty; set it in docker/.env" >&2
            exit 78
            ;;
        change-me*)
            echo "driftline: $name still holds the change-me placeholder of docker/.env.example; set a real secret in docker/.env" >&2
            exit 78
            ;;
    esac
done
unset value
exec "$@"
