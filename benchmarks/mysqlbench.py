"""A kkobot config for a benchmark run (scratch MariaDB database or SQLite, auth on or off), and the row counts in it."""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Any, NamedTuple


class Auth(NamedTuple):
    """The bot the load generator signs as (its secret and salt), when the server checks auth."""

    bot: str
    secret: str
    salt: str


def authSection(auth: Auth | None) -> dict[str, Any]:
    """`auth` of the config: required with devices auto-approved, or off."""
    return {"required": auth is not None, "auto_approve": True}


def botsSection(auth: Auth | None) -> dict[str, Any]:
    """`bots`: the load generator's bot with its secret and salt (auth on)."""
    if auth is None:
        return {}
    return {auth.bot: {"secret": auth.secret, "salt": auth.salt}}


class MysqlBench:
    """
    Creates `kkobot_bench_<hex>` and a config dir (kkobot.config) pointing at it; drops
    both. With C{auth}, the server requires every event signed by that bot's key.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 3306, user: str = "root",
                 password: str = "", auth: Auth | None = None, **chatlog: Any) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.name = f"kkobot_bench_{uuid.uuid4().hex[:10]}"
        self.workdir = tempfile.mkdtemp(prefix="kkobot-bench-mysql-")
        self.cfgdir = os.path.join(self.workdir, "cfg")
        self.auth = auth
        self.chatlog = chatlog

    def _connect(self, database: str | None = None) -> Any:
        import pymysql

        return pymysql.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password, database=database, autocommit=True,
                               charset="utf8mb4", connect_timeout=3)

    def create(self) -> None:
        from kkobot import config

        conn = self._connect()
        try:
            conn.cursor().execute(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4")
        finally:
            conn.close()
        data = config.skeleton()
        data["DBs"]["kkobot_test"] = {"HOST": self.host, "PORT": self.port, "USER": self.user,
                                      "PASSWORD": self.password, "NAME": self.name}
        data["auth"] = authSection(self.auth)
        data["bots"] = botsSection(self.auth)
        data["chatlog"] = dict(self.chatlog, journal_dir=os.path.join(self.workdir, "journal"))
        config.init(self.cfgdir, data)

    def server_cmd(self) -> str:
        return ("{twistd} -n --pidfile= kkobot --port tcp:{port}:interface=127.0.0.1 "
                f"--config {self.cfgdir} --var {self.workdir}/var --logs {self.workdir}/logs")

    def count(self, run_id: str | None = None) -> int:
        """kb_chat_logs rows (of one load run: its messages and their replies)."""
        conn = self._connect(self.name)
        try:
            cur = conn.cursor()
            try:
                if run_id is None:
                    cur.execute("SELECT COUNT(*) FROM kb_chat_logs")
                else:
                    cur.execute("SELECT COUNT(*) FROM kb_chat_logs WHERE message LIKE %s "
                                "OR message LIKE %s", (f"# echo {run_id}:%", f"에코: {run_id}:%"))
            except Exception:
                return 0  # the table does not exist before the server's first start
            return int(cur.fetchone()[0])
        finally:
            conn.close()

    def duplicates(self) -> int:
        conn = self._connect(self.name)
        try:
            cur = conn.cursor()
            cur.execute("SELECT COUNT(*) - COUNT(DISTINCT message, is_bot) FROM kb_chat_logs")
            return int(cur.fetchone()[0])
        finally:
            conn.close()

    def drop(self) -> None:
        import shutil

        conn = self._connect()
        try:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        finally:
            conn.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


class SqliteBench:
    """A config dir with the embedded SQLite database and auth on (C{auth}) or off; removed after."""

    def __init__(self, auth: Auth | None) -> None:
        self.auth = auth
        self.workdir = tempfile.mkdtemp(prefix="kkobot-bench-sqlite-")
        self.cfgdir = os.path.join(self.workdir, "cfg")

    def create(self) -> None:
        from kkobot import config

        data = config.skeleton()
        data["DBs"]["kkobot_test"] = {"ENGINE": "sqlite",
                                      "PATH": os.path.join(self.workdir, "kkobot.sqlite3")}
        data["auth"] = authSection(self.auth)
        data["bots"] = botsSection(self.auth)
        data["chatlog"] = {"journal_dir": os.path.join(self.workdir, "journal")}
        config.init(self.cfgdir, data)

    def server_cmd(self) -> str:
        return ("{twistd} -n --pidfile= kkobot --port tcp:{port}:interface=127.0.0.1 "
                f"--config {self.cfgdir} --var {self.workdir}/var --logs {self.workdir}/logs")

    def drop(self) -> None:
        import shutil

        shutil.rmtree(self.workdir, ignore_errors=True)
