using System.Globalization;
using Microsoft.AspNetCore.Http.Extensions;

namespace Fundament.Core.Http;

/// <summary>
/// Keyset paging, the one convention of every list endpoint. A request names the page size with
/// <c>limit</c> (1 to <see cref="MaxLimit"/>, default <see cref="DefaultLimit"/>) and where to start
/// with <c>after</c>: an opaque cursor, the sort key of the last item of the previous page. The
/// store reads <c>limit + 1</c> rows (<see cref="Take"/>) with <c>WHERE key &gt; @after ORDER BY key
/// LIMIT @take</c> on a unique key, so the database never returns more than a page. The body stays
/// what the endpoint always answered (a JSON array); when more items follow, the answer carries
/// <c>Link: &lt;…&amp;after=…&amp;limit=…&gt;; rel="next"</c>, and the last page has no Link.
/// </summary>
public static class Paging
{
    /// <summary>Items per page when the request names no <c>limit</c>.</summary>
    public const int DefaultLimit = 100;

    /// <summary>The largest <c>limit</c> a request may ask for.</summary>
    public const int MaxLimit = 500;

    /// <summary>The longest cursor (<c>after</c>) a request may send.</summary>
    public const int MaxAfterLength = 512;

    /// <summary>The fewest rows <see cref="FillAsync"/> reads per query.</summary>
    public const int MinFillBatch = 256;

    /// <summary>The page-size query parameter.</summary>
    public const string LimitParameter = "limit";

    /// <summary>The cursor query parameter.</summary>
    public const string AfterParameter = "after";

    /// <summary>
    /// Checks <paramref name="limit"/> (1 to <see cref="MaxLimit"/>) and <paramref name="after"/>
    /// (at most <see cref="MaxAfterLength"/> characters), adding what is wrong to <paramref name="errors"/>
    /// under the parameter's name; returns the page size to use.
    /// </summary>
    public static int Validate(ValidationErrors errors, int? limit, string? after)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (limit is < 1 or > MaxLimit)
        {
            errors.Add(LimitParameter, $"limit must be between 1 and {MaxLimit}.");
        }
        errors.MaxLength(AfterParameter, after, MaxAfterLength);
        return limit is >= 1 and <= MaxLimit ? limit.Value : DefaultLimit;
    }

    /// <summary>Rows to read for a page of <paramref name="limit"/> items: one more, which tells whether another page follows.</summary>
    public static int Take(int limit) => limit + 1;

    /// <summary>
    /// Trims <paramref name="rows"/>, read with <see cref="Take"/>, to <paramref name="limit"/>; when
    /// there were more, sets the response's <c>Link rel="next"</c> with the cursor of the last item
    /// kept. The next page's URL keeps the request's other query parameters except those named in
    /// <paramref name="dropped"/> (a blocking watch's <c>index</c> and <c>wait</c>, for one).
    /// </summary>
    public static IReadOnlyList<T> Page<T>(HttpContext context, IReadOnlyList<T> rows, int limit, Func<T, string> cursor, params string[] dropped)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(cursor);
        if (rows.Count <= limit)
        {
            return rows;
        }
        var page = rows.Take(limit).ToList();
        context.Response.Headers.Link = NextLink(context.Request, cursor(page[^1]), limit, dropped);
        return page;
    }

    /// <summary>The <c>Link</c> header value naming the page after <paramref name="after"/>.</summary>
    public static string NextLink(HttpRequest request, string after, int limit, params string[] dropped)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(after);
        var query = new QueryBuilder();
        foreach (var (name, values) in request.Query)
        {
            if (name.Equals(AfterParameter, StringComparison.OrdinalIgnoreCase) || name.Equals(LimitParameter, StringComparison.OrdinalIgnoreCase)
                || dropped.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                continue;
            }
            foreach (var value in values)
            {
                query.Add(name, value ?? "");
            }
        }
        query.Add(AfterParameter, after);
        query.Add(LimitParameter, limit.ToString(CultureInfo.InvariantCulture));
        return $"<{request.PathBase.ToUriComponent()}{request.Path.ToUriComponent()}{query.ToQueryString().ToUriComponent()}>; rel=\"next\"";
    }

    /// <summary>
    /// Reads <paramref name="take"/> rows that pass <paramref name="keep"/> (or every one left), for
    /// lists that filter rows after reading them (by the caller's access, say): a batch of at most
    /// <paramref name="take"/> rows at a time from <paramref name="fetch"/> (cursor, count), each batch
    /// starting after the <paramref name="cursor"/> of the last row of the one before. Memory holds a
    /// batch, never the table.
    /// </summary>
    public static async Task<IReadOnlyList<T>> FillAsync<T>(string? after, int take, Func<string?, int, Task<IReadOnlyList<T>>> fetch, Func<T, string> cursor, Func<T, bool> keep)
    {
        ArgumentNullException.ThrowIfNull(fetch);
        ArgumentNullException.ThrowIfNull(cursor);
        ArgumentNullException.ThrowIfNull(keep);
        var kept = new List<T>();
        // Batches no smaller than MinFillBatch: a caller that sees little of a big table (limit=1
        // on a vault it may list one path of) must not turn one request into thousands of queries.
        var batchSize = Math.Max(take, MinFillBatch);
        while (kept.Count < take)
        {
            var batch = await fetch(after, batchSize);
            kept.AddRange(batch.Where(keep).Take(take - kept.Count));
            if (batch.Count < batchSize)
            {
                break;
            }
            after = cursor(batch[^1]);
        }
        return kept;
    }

    /// <summary>
    /// A cursor of several parts (a composite sort key), joined by spaces. Every part but the last
    /// must be free of spaces; the last may hold anything.
    /// </summary>
    public static string Compose(params string[] parts) => string.Join(' ', parts);

    /// <summary>
    /// The <paramref name="count"/> parts of a cursor made by <see cref="Compose"/>; parts a hand-made
    /// cursor lacks are empty strings, which still make a valid lower bound.
    /// </summary>
    public static string[] Split(string after, int count)
    {
        ArgumentNullException.ThrowIfNull(after);
        var parts = after.Split(' ', count);
        return parts.Length == count ? parts : [.. parts, .. Enumerable.Repeat("", count - parts.Length)];
    }
}
