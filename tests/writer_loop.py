"""Helper for test_reliability: writes to an index in a loop until killed (build, add, remove or compact)."""
import sys
import time

from qa import Assistant, Config
from qa.ingest.records import make_article

index, mode, seeds = sys.argv[1], sys.argv[2], sys.argv[3]
# Small segments seal early and compact often, so kills also land inside sealing and compaction.
assistant = Assistant(Config().with_(index_dir=index, seal_size=40, max_small_segments=3))
seed_articles = assistant.library.load([seeds]).articles
extra = [make_article(f"Story {i}. The harbour master {i} counted {i * 7} boats at dawn. " * 20, id=f"extra-{i}")
         for i in range(6)]
assistant.library.embedder()  # load the embedding model before the loop, so kills land in writes
print("ready", flush=True)
i = 0
while True:
    i += 1
    if mode == "build":
        assistant.library.rebuild(seed_articles + extra[: 1 + i % 6])
    elif mode == "add":
        changed = make_article(f"Update {i}. The ferry left at {i % 12} o'clock with {i} cars. " * 30, id="changing")
        assistant.library.add([changed, extra[i % 6]])
    elif mode == "remove":
        assistant.library.add([extra[i % 6]])
        assistant.library.remove([extra[i % 6].id])
    else:
        assistant.library.add([make_article(f"Note {i}. The tide was {i} metres. " * 15, id=f"note-{i % 4}")])
        assistant.library.indexer().compact(full=True)
    print(f"wrote {i} {time.time():.3f}", flush=True)
