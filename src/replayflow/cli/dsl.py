"""`replayflow validate FILE...` and `replayflow deploy FILE...`: Serverless Workflow
documents."""

from __future__ import annotations

from pathlib import Path

import click

from replayflow.cli.support import kafka_settings, one_line_errors


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-q", "--quiet", is_flag=True, help="Print problems only.")
def validate(files: tuple[Path, ...], quiet: bool) -> None:
    """Validate workflow documents (YAML or JSON) against the DSL schema and the
    engine's rules; exits 1 if any is invalid."""
    from replayflow.dsl.validate import validate_file

    bad = 0
    for path in files:
        report = validate_file(path)
        if report.ok:
            if not quiet:
                click.echo(f"{path}: ok")
        else:
            bad += 1
            click.echo(report.message(), err=True)
    if bad:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@one_line_errors
def deploy(files: tuple[Path, ...]) -> None:
    """Validate and deploy workflow documents to replayflow.workflows (by name and
    version). Redeploying identical content is a no-op; other content under a deployed
    version is an error."""
    from replayflow.dsl.documents import DocumentStore
    from replayflow.dsl.documents import deploy as deploy_document
    from replayflow.dsl.validate import DocumentInvalid
    from replayflow.processors.documents import KafkaDocumentLog

    with DocumentStore(KafkaDocumentLog(kafka_settings())) as store:
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
            try:
                done = deploy_document(store, text, str(path))
            except DocumentInvalid as exc:
                click.echo(str(exc), err=True)
                raise click.exceptions.Exit(1) from None
            what = "deployed" if done.created else "unchanged (already deployed)"
            click.echo(f"{done.record.name} {done.record.version}: {what}")
            if done.created:
                store.wait_for(done.record.name, done.record.version, 10)
