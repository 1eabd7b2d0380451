"""``tfx.dsl.standard_annotations``: the system types ``@component(component_annotation=...)``
names. mlpipe records nothing from them; they exist so such pipelines load unchanged."""


class SystemArtifact:
    """Marks what kind of data an artifact type holds."""


class SystemExecution:
    """Marks what kind of work a component does."""


class Dataset(SystemArtifact): ...


class Model(SystemArtifact): ...


class Statistics(SystemArtifact): ...


class Metrics(SystemArtifact): ...


class Train(SystemExecution): ...


class Transform(SystemExecution): ...


class Process(SystemExecution): ...


class Evaluate(SystemExecution): ...


class Deploy(SystemExecution): ...
