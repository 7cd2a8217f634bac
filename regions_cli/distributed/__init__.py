"""Steps run by workers: the job a coordinator sends, the worker that runs it, the runner that
plugs into the executor.

A *job* is one step attempt: the region's state, the method, the origin of what it will post,
and the workflow's text as written and its hash (the worker verifies and builds a workflow once per
hash). Its *result* is the region's new state, what it posted, its outcome and the events it
emitted (model calls, streamed tokens, notices). Workers keep no run state between jobs: any
worker can take any job. `jobs.py` is the codec, `worker.py` runs a job, `remote.py` is the
coordinator's `StepRunner`. The transport between them (NATS JetStream) comes on top of these.
"""
