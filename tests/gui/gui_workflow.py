"""The workflow the `regions gui` tests edit and run."""

#: A small valid workflow: scripted LLM (no model), two regions that talk, comments to keep.
WORKFLOW = """\
# A workflow the GUI tests edit. This comment must survive a save.
version: 1
name: gui-test
description: Two regions and a scripted model.

llms:
  default:
    backend: scripted   # deterministic, no model
    rules:
      - {match: "dictionary of sources", reply: '[{"source": "Expert", "question": "Who?"}]'}
    fallback: "Zebras were led by Zed."

regions:
  # The one the user talks to.
  Asker:
    type: Region
    task: Ask the expert and answer the user.
    connections: [Expert]
  Expert:
    type: Region
    task: Answer questions about zebras.
    connections: [Asker]

inject:
  - {from: user, to: Asker, role: request, content: "A question about zebras?"}

plan:
  - layer: ask
    chains:
      main: [Asker.make_questions]
  - layer: answer
    chains:
      main: [Expert.make_replies]
  - layer: reply
    chains:
      main: [Asker.make_replies]
"""
