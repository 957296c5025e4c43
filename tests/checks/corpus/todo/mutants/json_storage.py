#!/usr/bin/env python3
"""Todo CLI that keeps its tasks in a JSON file, not SQLite (it never imports sqlite3)."""

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

DB_PATH = Path("todo.json")


def load():
    return json.loads(DB_PATH.read_text()) if DB_PATH.exists() else []


def save(tasks):
    DB_PATH.write_text(json.dumps(tasks))


def add_task(title):
    tasks = load()
    next_id = max((t["id"] for t in tasks), default=0) + 1
    created_at = datetime.now().strftime("%Y-%m-%d %H:%M")
    tasks.append({"id": next_id, "title": title, "completed": False, "created_at": created_at})
    save(tasks)
    print(f"Added: {title}")


def list_tasks():
    tasks = load()
    if not tasks:
        print("No tasks yet.")
        return
    for task in tasks:
        mark = "[x]" if task["completed"] else "[ ]"
        print(f"{task['id']:<3} {mark} {task['title']} (created at: {task['created_at']})")


def find(tasks, task_id):
    for task in tasks:
        if task["id"] == task_id:
            return task
    sys.exit(f"Error: no task with id {task_id}")


def complete_task(task_id):
    tasks = load()
    find(tasks, task_id)["completed"] = True
    save(tasks)
    print(f"Completed task {task_id}")


def delete_task(task_id):
    tasks = load()
    tasks.remove(find(tasks, task_id))
    save(tasks)
    print(f"Deleted task {task_id}")


def main():
    parser = argparse.ArgumentParser(description="A small todo list")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("add", help="add a task").add_argument("title")
    sub.add_parser("list", help="list tasks")
    sub.add_parser("complete", help="mark a task done").add_argument("id", type=int)
    sub.add_parser("delete", help="delete a task").add_argument("id", type=int)
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
    except (OSError, ValueError) as exc:
        print(f"Storage error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
