#!/bin/sh
# Write the .env docker-compose.yml reads: .env.example with a fresh random password for each of
# MYSQL_ROOT_PASSWORD, MYSQL_PASSWORD and ZENML_ADMIN_PASSWORD (Compose refuses to start without
# them: the project has no default passwords). Mode 0600; an existing file is never overwritten.
#
#   scripts/new-env.sh             # writes ./.env next to docker-compose.yml (or: make env)
#   scripts/new-env.sh other.env   # writes other.env instead
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-$root/.env}
if [ -e "$target" ]; then
  echo "$target exists: left as it is (delete it to generate new passwords; the ZenML admin" \
    "and MySQL users keep the passwords they were created with)" >&2
  exit 1
fi
# Letters and digits only: nothing Compose or a database URL would interpret.
random() { LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32; }
umask 077
sed -e "s/^MYSQL_ROOT_PASSWORD=.*/MYSQL_ROOT_PASSWORD=$(random)/" \
  -e "s/^MYSQL_PASSWORD=.*/MYSQL_PASSWORD=$(random)/" \
  -e "s/^ZENML_ADMIN_PASSWORD=.*/ZENML_ADMIN_PASSWORD=$(random)/" \
  "$root/.env.example" >"$target.tmp"
mv "$target.tmp" "$target"
echo "wrote $target with random passwords (the ZenML admin's: ZENML_ADMIN_PASSWORD in it)" >&2
