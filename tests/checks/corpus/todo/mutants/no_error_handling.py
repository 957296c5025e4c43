#!/usr/bin/env python3
"""Todo CLI with no error handling at all."""

import argparse
import sqlite3
import sys
from datetime import datetime

DB_PATH = "todo.db"


def connect():
    conn = sqlite3.connect(DB_PATH)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS tasks ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, "
        "completed INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL)"
    )
    return conn


def add_task(title):
    with connect() as conn:
        conn.execute(
            "INSERT INTO tasks (title, created_at) VALUES (?, ?)",
            (title, datetime.now().strftime("%Y-%m-%d %H:%M")),
        )
    print(f"Added: {title}")


def list_tasks():
    with connect() as conn:
        rows = conn.execute(
            "SELECT id, title, completed, created_at FROM tasks ORDER BY id"
        ).fetchall()
    if not rows:
        print("No tasks yet.")
        return
    for task_id, title, completed, created_at in rows:
        mark = "[x]" if completed else "[ ]"
        print(f"{task_id:<3} {mark} {title} (created at: {created_at})")


def complete_task(task_id):
    with connect() as conn:
        cur = conn.execute("UPDATE tasks SET completed = 1 WHERE id = ?", (task_id,))
    print(f"Completed task {task_id}")


def delete_task(task_id):
    with connect() as conn:
        cur = conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
    print(f"Deleted task {task_id}")


def main():
    parser = argparse.ArgumentParser(description="A small todo list")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("add", help="add a task").add_argument("title")
    sub.add_parser("list", help="list tasks")
    sub.add_parser("complete", help="mark a task done").add_argument("id", type=int)
    sub.add_parser("delete", help="delete a task").add_argument("id", type=int)
    args = parser.parse_args()
    if args.command == "add":
        add_task(args.title)
    elif args.command == "list":
        list_tasks()
    elif args.command == "complete":
        complete_task(args.id)
    elif args.command == "delete":
        delete_task(args.id)


if __name__ == "__main__":
    main()
