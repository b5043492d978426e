using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Fundament.Media;
using Fundament.Media.Processing;

namespace Fundament.Analysis.Stages;

/// <summary>
/// Stage <c>ocr</c>: the <c>tesseract</c> command (Debian's <c>tesseract-ocr</c>) on the picture, in
/// the configured languages, word by word with confidences (its TSV output). The text keeps the
/// lines tesseract found; words under <see cref="OcrOptions.MinWordConfidence"/> are left out, and
/// the confidence reported is the mean of the words kept. Skipped when tesseract is not installed.
/// </summary>
internal sealed class OcrStage(AnalysisStore store, AnalysisService analysis, MediaStore media, AnalysisImages images, ILogger<OcrStage> logger)
    : StageJob(store, analysis, media, logger)
{
    /// <summary>OCR reads small print better from more pixels than the other stages need.</summary>
    private const int MaxSide = 2048;

    private const long MemoryLimit = 2L << 30;

    public override string Stage => AnalysisStages.Ocr;

    protected override async Task<StageOutcome> RunAsync(AssetRow asset, CancellationToken cancellationToken)
    {
        var options = Analysis.Options.Ocr;
        if (!options.Enabled)
        {
            throw new StageSkippedException("OCR is turned off (Fundament:Analysis:Ocr:Enabled)");
        }
        if (ExternalTool.Find(options.Tesseract) is null && !File.Exists(options.Tesseract))
        {
            throw new StageSkippedException($"{options.Tesseract} is not installed on this worker");
        }
        var picture = await images.LoadAsync(asset, MaxSide, ".png", cancellationToken);
        var file = Path.Combine(Path.GetTempPath(), $"fundament-ocr-{Guid.NewGuid():N}.png");
        string tsv;
        try
        {
            await File.WriteAllBytesAsync(file, picture, cancellationToken);
            tsv = await ExternalTool.RunAsync(options.Tesseract, [file, "stdout", "-l", options.Languages, "--psm", "3", "tsv"], options.Timeout, MemoryLimit, cancellationToken);
        }
        catch (MediaRejectedException ex)
        {
            // Exit code not 0: a language without its data (tesseract-ocr-deu missing), an unreadable picture.
            throw new StageFailedException(ex.Message);
        }
        finally
        {
            File.Delete(file);
        }
        var (text, confidence, words) = Parse(tsv, options.MinWordConfidence);
        return new StageOutcome(new JsonObject
        {
            ["text"] = text,
            ["confidence"] = confidence is { } c ? Math.Round(c, 1) : null,
            ["words"] = words,
            ["languages"] = options.Languages,
        }, "tesseract");
    }

    /// <summary>Tesseract's TSV: level 5 rows are words (conf 0-100, -1 for layout rows); lines are (block, paragraph, line).</summary>
    internal static (string Text, double? Confidence, int Words) Parse(string tsv, int minConfidence)
    {
        var text = new StringBuilder();
        var line = (Block: -1, Paragraph: -1, Line: -1);
        var sum = 0.0;
        var count = 0;
        foreach (var row in tsv.Split('\n'))
        {
            var columns = row.TrimEnd('\r').Split('\t');
            if (columns.Length < 12 || columns[0] != "5"
                || !double.TryParse(columns[10], NumberStyles.Float, CultureInfo.InvariantCulture, out var conf) || conf < minConfidence
                || string.IsNullOrWhiteSpace(columns[11])
                || !int.TryParse(columns[2], CultureInfo.InvariantCulture, out var block) || !int.TryParse(columns[3], CultureInfo.InvariantCulture, out var paragraph)
                || !int.TryParse(columns[4], CultureInfo.InvariantCulture, out var lineNumber))
            {
                continue;
            }
            var here = (block, paragraph, lineNumber);
            if (count > 0)
            {
                text.Append(here == line ? ' ' : '\n');
            }
            line = here;
            text.Append(columns[11].Trim());
            sum += conf;
            count++;
        }
        return (text.ToString(), count == 0 ? null : sum / count, count);
    }
}
