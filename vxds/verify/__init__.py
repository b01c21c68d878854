"""``vxds verify``: every check that can be made on a project, as findings.

The checks run per dataset version (``Target``) in the order of ``LOCK_CHECKS``; each is a
function ``(Context, Target) -> list[Finding]``, so a new check is one more function in
that tuple. Codes are stable and documented in ``docs/checks.md``:

* VX1xx the manifest and recipe scripts;
* VX2xx lock presence, orphans, staleness, (``--base``) published locks that changed and
  imported locks that differ from their registry's;
* VX3xx a corrupt lock (VX312: a lock merged by Git); VX4xx leakage between splits;
* VX5xx ``--data``: the bytes in the source; VX6xx ``--reproduce``: re-running recipes;
* VX7xx is reserved for checks of materialized outputs; VX8xx the content-addressed store.

Nothing here imports or runs recipe code unless ``reproduce`` is asked without ``no_exec``.
Nothing is written to the repository; results of line checks are remembered under
``.vxds/`` (git-ignored), keyed by content digests, so unchanged locks are not re-parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vxds.errors import ManifestError
from vxds.progress import NO_PROGRESS, Progress
from vxds.project.config import Config
from vxds.project.manifest import Manifest, load_manifest
from vxds.verify.data import check_data
from vxds.verify.findings import ERROR, Finding, sort_key
from vxds.verify.imports import check_import
from vxds.verify.integrity import check_integrity, check_presence, check_staleness, precheck
from vxds.verify.line_scan import valid_block
from vxds.verify.model import CACHE_FILE, Context, Options, Report, ResultCache, Sample, Target
from vxds.verify.project import find_targets, manifest_findings, script_findings
from vxds.verify.reruns import check_merged, check_published, check_reproduce, check_source, published_by_key
from vxds.verify.store import check_store

__all__ = ["LOCK_CHECKS", "Options", "Report", "Sample", "run", "valid_block", "verify"]

# The checks of one dataset version, in order; each sees what the earlier ones set on the target.
LOCK_CHECKS: tuple[Callable[[Context, Target], list[Finding]], ...] = (
    check_presence,
    check_integrity,
    check_import,
    check_merged,
    check_staleness,
    check_published,
    check_source,
    check_data,
    check_store,
    check_reproduce,
)


def run(config: Config, specs: Sequence[str] = (), options: Options | None = None) -> Report:
    """Check the project (or the named ``NAME[@V]`` datasets) and report what was found."""
    options = options or Options()
    try:
        manifest: Manifest | None = load_manifest(
            config.manifest, default_source=config.source, require_scripts=False, cache_dir=config.cache_dir
        )
        findings: list[Finding] = []
    except ManifestError as exc:
        manifest, findings = None, manifest_findings(config, exc)
    if manifest is not None:
        entries = manifest.select(specs) if specs else list(manifest)
        findings += script_findings(config, entries)
    if options.manifest_only:
        return Report(sorted(findings, key=sort_key), len(manifest.entries) if manifest else 0, 0)
    targets, orphans = find_targets(config, manifest, specs)
    findings += orphans
    cache = ResultCache(config.cache_dir / CACHE_FILE if options.use_cache else None)
    ctx = Context(config, options, cache)
    ctx.prechecked = precheck(ctx, targets)
    if options.base is not None:
        ctx.published = published_by_key(config, options.base, targets, specs)
    task = options.progress.task("verifying", total=len(targets))
    try:
        for target in targets:
            for check in LOCK_CHECKS:
                findings += check(ctx, target)
            target.lock = None  # release the lock's bytes before the next one is read
            task.advance()
    finally:
        task.close()
        cache.save()
    for change in ctx.published.values():  # published versions that are gone from the manifest too
        findings.append(Finding("VX205", ERROR, change.message, dataset=change.key, file=change.path))
    return Report(
        sorted(findings, key=sort_key),
        datasets=len(targets),
        resources=sum(t.resources for t in targets),
        data_checked=ctx.data_checked,
        drift=ctx.drift,
    )


def verify(
    config: Config,
    specs: Sequence[str] = (),
    *,
    no_exec: bool = False,
    data: bool = False,
    sample: Sample | None = None,
    seed: int = 0,
    reproduce: bool = False,
    manifest_only: bool = False,
    use_cache: bool = True,
    jobs: int | None = None,
    progress: Progress = NO_PROGRESS,
    base: str | None = None,
) -> list[Finding]:
    """Every finding about the project, sorted by dataset, file, line and code."""
    options = Options(
        no_exec=no_exec,
        data=data,
        sample=sample,
        seed=seed,
        reproduce=reproduce,
        manifest_only=manifest_only,
        use_cache=use_cache,
        jobs=jobs,
        progress=progress,
        base=base,
    )
    return run(config, specs, options).findings
