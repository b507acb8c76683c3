#!/bin/bash
# Entrypoint of the mysql:8.0 stand-in: the official image's first-start behaviour, on MariaDB.
#
# Honoured as the official image does: MYSQL_ROOT_PASSWORD (or MYSQL_ALLOW_EMPTY_PASSWORD /
# MYSQL_RANDOM_ROOT_PASSWORD: one is required on first start), MYSQL_ROOT_HOST (default %),
# MYSQL_DATABASE, MYSQL_USER + MYSQL_PASSWORD (granted all on MYSQL_DATABASE). The *_FILE
# variants and /docker-entrypoint-initdb.d are not implemented (nothing here uses them).
# While initialising, the server listens on its socket only, so a TCP healthcheck
# (`mysqladmin ping -h 127.0.0.1`) turns healthy only once the real server is up.
set -euo pipefail

if [ "${1:-}" != mysqld ] && [ "${1:-}" != mariadbd ]; then
  exec "$@"
fi
shift
DATADIR=/var/lib/mysql
INIT_SOCKET=/run/mysqld/init.sock
note() { echo "$(date -u +%FT%TZ) [Entrypoint]: $*" >&2; }
sql_string() { local v=${1//\\/\\\\}; printf "'%s'" "${v//\'/\\\'}"; }
sql_name() { printf '`%s`' "${1//\`/\`\`}"; }

mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld "$DATADIR"

if [ ! -d "$DATADIR/mysql" ]; then
  if [ -z "${MYSQL_ROOT_PASSWORD:-}" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ] \
    && [ -z "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
    note "Database is uninitialized and password option is not specified"
    note "You need to specify one of the following as an environment variable:"
    note "- MYSQL_ROOT_PASSWORD"
    note "- MYSQL_ALLOW_EMPTY_PASSWORD"
    note "- MYSQL_RANDOM_ROOT_PASSWORD"
    exit 1
  fi
  note "Initializing database files"
  mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
    --auth-root-authentication-method=normal >/dev/null
  mariadbd --user=mysql --datadir="$DATADIR" --skip-networking --socket="$INIT_SOCKET" &
  init_pid=$!
  for _ in $(seq 1 60); do
    mariadb-admin --socket="$INIT_SOCKET" -uroot ping >/dev/null 2>&1 && break
    sleep 1
  done
  root_password=${MYSQL_ROOT_PASSWORD:-}
  if [ -n "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
    root_password=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)
    note "GENERATED ROOT PASSWORD: $root_password"
  fi
  root_host=${MYSQL_ROOT_HOST:-%}
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "DELETE FROM mysql.user WHERE user='';"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$root_password");"
    if [ "$root_host" != localhost ]; then
      echo "CREATE USER 'root'@$(sql_string "$root_host") IDENTIFIED BY $(sql_string "$root_password");"
      echo "GRANT ALL ON *.* TO 'root'@$(sql_string "$root_host") WITH GRANT OPTION;"
    fi
    if [ -n "${MYSQL_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS $(sql_name "$MYSQL_DATABASE");"
    fi
    if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
      echo "CREATE USER $(sql_string "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
      if [ -n "${MYSQL_DATABASE:-}" ]; then
        echo "GRANT ALL ON $(sql_name "$MYSQL_DATABASE").* TO $(sql_string "$MYSQL_USER")@'%';"
      fi
      # Not in the official image: ZenML's migrations run `SET GLOBAL innodb_force_primary_key`
      # on MariaDB (a session variable on MySQL 8), which needs this privilege.
      echo "GRANT SUPER ON *.* TO $(sql_string "$MYSQL_USER")@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$INIT_SOCKET" -uroot
  kill "$init_pid"
  wait "$init_pid" || true
  note "Database initialized; starting the server"
fi

exec mariadbd --user=mysql --datadir="$DATADIR" "$@"
