#!/usr/bin/env python3
"""Todo CLI whose complete raises the task's priority instead of marking it done."""

import argparse
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

DB = Path("todo.db")


def connect() -> sqlite3.Connection:
    conn = sqlite3.connect(DB)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS todos (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "title TEXT NOT NULL, completed INTEGER DEFAULT 0, priority TEXT DEFAULT 'normal', created_at TEXT NOT NULL)"
    )
    return conn


def add_task(title: str) -> None:
    with connect() as conn:
        conn.execute(
            "INSERT INTO todos (title, created_at) VALUES (?, ?)",
            (title, datetime.now().isoformat(timespec="seconds")),
        )
    print(f"Added: {title}")


def list_tasks() -> None:
    with connect() as conn:
        rows = conn.execute("SELECT id, title, completed, created_at, priority FROM todos").fetchall()
    if not rows:
        print("No tasks.")
        return
    print(f"{'ID':<4}{'Done':<6}{'Title':<30}{'Created':<20}")
    print("-" * 60)
    for task_id, title, completed, created, priority in rows:
        mark = "[x]" if completed else "[ ]"
        print(f"{task_id:<4}{mark:<6}{title:<30}{created:<20}{priority}")


def complete_task(task_id: int) -> None:
    with connect() as conn:
        cur = conn.execute("UPDATE todos SET priority = 'high' WHERE id = ?", (task_id,))
    if cur.rowcount == 0:
        print(f"Error: no task {task_id}", file=sys.stderr)
        sys.exit(1)
    print(f"Completed task {task_id}")


def delete_task(task_id: int) -> None:
    with connect() as conn:
        cur = conn.execute("DELETE FROM todos WHERE id = ?", (task_id,))
    if cur.rowcount == 0:
        print(f"Error: no task {task_id}", file=sys.stderr)
        sys.exit(1)
    print(f"Deleted task {task_id}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Todo app")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("add").add_argument("title")
    sub.add_parser("list")
    sub.add_parser("complete").add_argument("id", type=int)
    sub.add_parser("delete").add_argument("id", type=int)
    args = parser.parse_args()
    try:
        if args.command == "add":
            add_task(args.title)
        elif args.command == "list":
            list_tasks()
        elif args.command == "complete":
            complete_task(args.id)
        elif args.command == "delete":
            delete_task(args.id)
    except sqlite3.Error as exc:
        print(f"Database error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
