"""Import and export of the original Regions framework's JSON files.

The original describes a workflow in a registry (``<name>_regions.json``) and a plan
(``<name>_executions.json``), or in its flow editor's full state (``*_state.json``); see the docs'
page docs/import-export.md. One module per direction and step:

* `parse`: reads and checks those files into the intermediate form (`SeedWorkflow`); problems
  raise `SeedFormatError`, whose message names the file and the JSON path of the value;
* `to_yaml`: `import_files`, the files -> a commented YAML document in our format
  (`ImportResult`), and `schema_reference`, the ``$schema`` path it points at;
* `export`: `export_workflow`, a `Workflow` -> the registry and plan (`ExportResult`), naming what
  those files cannot say.

Import each name from the module that owns it.
"""
