"""siamkpn-test's run: videos shared by workers, invocations and machines through per-video claims.

``devices`` (one device per worker), ``dispatch`` (which video next: claims, held videos, waiting), ``worker``
(tracking a stream of videos and writing their results, in this process or a worker process), ``pool`` (worker
processes and their messages), ``runner`` (the run as siamkpn-test prints it).
"""
