"""`qa follow "question"`, `qa follow list|show ID|remove ID`: standing questions and their timelines."""
from __future__ import annotations

import time

from ..answering.following import refresh
from ..index import follows

ACTIONS = ("list", "show", "remove")


def options(command) -> None:
    f = command("follow", cmd_follow, 'follow a question: `qa follow "question"`, then `qa follow list`, '
                                      '`qa follow show ID`, `qa follow remove ID`')
    f.add_argument("words", nargs="+", metavar="QUESTION | list | show ID | remove ID")
    f.add_argument("--since", default=None, metavar="DATE", help="only articles published on or after DATE")


def cmd_follow(assistant, args) -> int:
    index = assistant.config.index_dir
    action, rest = (args.words[0], args.words[1:]) if args.words[0] in ACTIONS else ("add", args.words)
    if action == "list":
        return print_list(follows.load(index))
    if action in ("show", "remove"):
        if len(rest) != 1:
            raise follows.FollowError(f"`qa follow {action}` takes one id (`qa follow list` shows them)")
        if action == "remove":
            follows.remove(index, rest[0])
            print(f"no longer following {rest[0]}")
            return 0
        return print_history(follows.find(index, rest[0]))
    query = assistant.query(" ".join(rest), since=args.since)  # refused as `qa ask` refuses it
    followed = follows.add(index, query.question, query.filter.since)
    [now] = [f for f in refresh(assistant, only={followed.id}) if f.id == followed.id]
    print(f"following {now.id}: {now.question}\n  {now.change_note()}")
    return 0


def print_list(followed: list[follows.Follow]) -> int:
    if not followed:
        print('no followed questions; follow one with `qa follow "question"`')
    for f in followed:
        since = f" (since {f.since})" if f.since else ""
        print(f"{f.id}  {f.question}{since}\n          {f.change_note()}; {len(f.history)} answer(s) recorded")
    return 0


def print_history(f: follows.Follow) -> int:
    print(f"{f.id}  {f.question}")
    for e in f.history:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.recorded))
        dated = f", {e.published[:10]}" if e.published else ""
        said = f"{e.text} ({e.confidence:.2f}), {e.title}{dated}" if e.found else "the articles no longer answer it"
        print(f"  {when}  {said}")
    return 0
