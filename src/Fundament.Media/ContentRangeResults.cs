using System.Globalization;
using Fundament.Media.Storage;
using Microsoft.Net.Http.Headers;

namespace Fundament.Media;

/// <summary>
/// Serves a stored object with a strong ETag (content hash), conditional GET, and single byte
/// ranges (206, 416), streamed from the store. Content is always sent with <c>nosniff</c> and a
/// sandboxing CSP so an uploaded polyglot can never run as a page of this origin.
/// </summary>
internal static class ContentRangeResults
{
    public static async Task ServeAsync(HttpContext context, IBlobStore store, string key, string mime, string etag, long size, string? filename, bool immutable)
    {
        var response = context.Response;
        var request = context.Request;
        var tag = new EntityTagHeaderValue($"\"{etag}\"");
        response.Headers.ETag = tag.ToString();
        response.Headers.AcceptRanges = "bytes";
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.ContentSecurityPolicy = "default-src 'none'; sandbox";
        response.Headers.CacheControl = immutable ? "private, max-age=31536000, immutable" : "private, no-cache";
        if (filename is not null)
        {
            var disposition = new ContentDispositionHeaderValue("inline");
            disposition.SetHttpFileName(filename);
            response.Headers.ContentDisposition = disposition.ToString();
        }
        if (request.Headers.IfNoneMatch.Count > 0
            && EntityTagHeaderValue.TryParseList(request.Headers.IfNoneMatch, out var noneMatch)
            && noneMatch.Any(t => t.Equals(EntityTagHeaderValue.Any) || t.Compare(tag, useStrongComparison: false)))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }
        long offset = 0;
        var length = size;
        var rangeHeader = request.Headers.Range.ToString();
        var useRange = rangeHeader.Length > 0;
        if (useRange && request.Headers.IfRange.Count > 0)
        {
            // A range only applies when the client's copy is still the current one.
            useRange = EntityTagHeaderValue.TryParse(request.Headers.IfRange.ToString(), out var ifRange) && ifRange.Compare(tag, useStrongComparison: true);
        }
        if (useRange)
        {
            if (!RangeHeaderValue.TryParse(rangeHeader, out var range) || !string.Equals(range.Unit.Value, "bytes", StringComparison.OrdinalIgnoreCase) || range.Ranges.Count != 1)
            {
                // Several ranges (multipart/byteranges) are not served; the whole body is a valid answer.
                useRange = false;
            }
            else
            {
                var item = range.Ranges.Single();
                if (item.From is { } from)
                {
                    if (from >= size)
                    {
                        response.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
                        response.Headers.ContentRange = $"bytes */{size}";
                        return;
                    }
                    offset = from;
                    length = Math.Min(item.To ?? size - 1, size - 1) - from + 1;
                }
                else if (item.To is { } suffix && suffix > 0)
                {
                    length = Math.Min(suffix, size);
                    offset = size - length;
                }
                else
                {
                    response.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
                    response.Headers.ContentRange = $"bytes */{size}";
                    return;
                }
                response.StatusCode = StatusCodes.Status206PartialContent;
                response.Headers.ContentRange = string.Create(CultureInfo.InvariantCulture, $"bytes {offset}-{offset + length - 1}/{size}");
            }
        }
        response.ContentType = mime;
        response.ContentLength = length;
        if (HttpMethods.IsHead(request.Method))
        {
            return;
        }
        await using var stream = await store.OpenReadAsync(key, offset, offset == 0 && length == size ? null : length, context.RequestAborted);
        if (stream is null)
        {
            response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            response.ContentLength = null;
            return;
        }
        await stream.CopyToAsync(response.Body, 1 << 16, context.RequestAborted);
    }
}
