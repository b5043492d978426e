using System.Globalization;

namespace Fundament.Media.Processing;

/// <summary>PDF: page count, title and author with pdfinfo; the first page rendered with pdftoppm (poppler).</summary>
internal sealed class PdfProcessor(MediaOptions options)
{
    public async Task<MediaMetadata> InfoAsync(string path, CancellationToken cancellationToken)
    {
        var text = await ExternalTool.RunAsync("pdfinfo", ["-enc", "UTF-8", path], options.ToolTimeout, options.ToolMemoryBytes, cancellationToken);
        var metadata = new MediaMetadata();
        foreach (var line in text.Split('\n'))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }
            var key = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            if (value.Length == 0)
            {
                continue;
            }
            metadata.Raw[$"pdf:{key.ToLowerInvariant()}"] = value.Length > 500 ? value[..500] : value;
            switch (key)
            {
                case "Pages" when int.TryParse(value, CultureInfo.InvariantCulture, out var pages):
                    metadata.PageCount = pages;
                    break;
                case "Title":
                    metadata.Title = value;
                    break;
                case "Author":
                    metadata.Author = value;
                    break;
            }
        }
        if (metadata.PageCount is null or < 1)
        {
            throw new MediaRejectedException("the PDF has no pages pdfinfo can read");
        }
        return metadata;
    }

    public async Task<string> FirstPageAsync(string path, string workDir, int size, CancellationToken cancellationToken)
    {
        var prefix = Path.Combine(workDir, "page1");
        await ExternalTool.RunAsync("pdftoppm", ["-f", "1", "-l", "1", "-png", "-singlefile", "-scale-to", size.ToString(CultureInfo.InvariantCulture), path, prefix],
            options.ToolTimeout, options.ToolMemoryBytes, cancellationToken);
        var output = prefix + ".png";
        return File.Exists(output) ? output : throw new MediaRejectedException("pdftoppm rendered no page");
    }
}
