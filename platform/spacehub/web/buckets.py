"""A bucket's page: its files, with upload and delete for writers. Uploading through
`huggingface_hub` needs the Xet protocol, which this hub does not speak, so the page is how files
get into a bucket from outside (apps write through their mount)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from spacehub.controller import bucket_files, buckets
from spacehub.controller.access import can_write
from spacehub.errors import BadRequest, SpacehubError
from spacehub.web.deps import Browser, BrowserDep

router = APIRouter(include_in_schema=False)
LISTED = 1000


@router.get("/buckets/{owner}/{name}", response_class=HTMLResponse)
def bucket_page(owner: str, name: str, browser: BrowserDep) -> Response:
    """The bucket's files (the first thousand), its size against its quota, and how to use it."""
    bucket = buckets.readable_bucket(browser.session, browser.principal, owner, name)
    root = buckets.bucket_root(browser.ctx, bucket)
    files = []
    for entry in bucket_files.entries(root, recursive=True):
        if not entry.is_dir:
            files.append(entry)
        if len(files) == LISTED:
            break
    return browser.render(
        "bucket.html",
        bucket=bucket,
        info=buckets.bucket_json(browser.ctx, bucket, ""),
        files=files,
        more=len(files) == LISTED,
        can_write=can_write(browser.session, browser.principal, bucket),
    )


@router.post("/buckets/{owner}/{name}/{action}")
async def bucket_action(owner: str, name: str, action: str, browser: BrowserDep) -> Response:
    """Upload a file (`upload`) or delete one (`delete`), then show the bucket again."""
    form = await browser.check_form()
    bucket = buckets.writable_bucket(browser.session, browser.principal, owner, name)
    page = f"/buckets/{bucket.full_name}"
    try:
        notice = apply(browser, bucket, action, form)
    except SpacehubError as exc:
        return browser.redirect(page, error=exc.message)
    return browser.redirect(page, notice=notice)


def apply(browser: Browser, bucket: Any, action: str, form: dict[str, Any]) -> str:
    """One form's change to the bucket; what happened, in a sentence."""
    root = buckets.bucket_root(browser.ctx, bucket)
    if action == "delete":
        path = bucket_files.clean_bucket_path(form.get("path"))
        if not bucket_files.delete_file(root, path):
            raise BadRequest(f"{path} is not in the bucket")
        return f"{path} is deleted."
    if action != "upload":
        raise BadRequest(f"unknown action {action!r}")
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise BadRequest("choose a file to upload")
    folder = str(form.get("folder") or "").strip("/")
    path = bucket_files.clean_bucket_path(f"{folder}/{upload.filename}" if folder else upload.filename)
    size = buckets.upload(browser.ctx, bucket, path, upload.file, upload.size or 0)
    return f"{path} is uploaded ({size:,} bytes)."
