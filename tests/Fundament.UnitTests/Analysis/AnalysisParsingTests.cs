using System.Text.Json.Nodes;
using Fundament.Analysis;
using Fundament.Analysis.Stages;
using Fundament.Core.Storage;

namespace Fundament.UnitTests.Analysis;

public sealed class AnalysisParsingTests
{
    [Fact]
    public void Tesseract_tsv_keeps_lines_drops_unsure_words_and_averages_the_confidence_of_the_kept_ones()
    {
        var tsv = string.Join('\n',
            "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext",
            "1\t1\t0\t0\t0\t0\t0\t0\t800\t600\t-1\t",
            "4\t1\t1\t1\t1\t0\t60\t60\t400\t50\t-1\t",
            "5\t1\t1\t1\t1\t1\t60\t60\t200\t50\t96.5\tINVOICE",
            "5\t1\t1\t1\t1\t2\t280\t60\t120\t50\t93.5\t4711",
            "5\t1\t1\t1\t2\t1\t60\t130\t300\t50\t91\tFUNDAMENT",
            "5\t1\t1\t1\t2\t2\t380\t130\t10\t50\t12\t~",
            "5\t1\t2\t1\t1\t1\t60\t300\t10\t10\t95\t ");
        var (text, confidence, words) = OcrStage.Parse(tsv, 30);
        Assert.Equal("INVOICE 4711\nFUNDAMENT", text);
        Assert.Equal(3, words);
        Assert.Equal(93.67, confidence!.Value, 2);
        Assert.Equal(("", (double?)null, 0), OcrStage.Parse("level\tpage_num\n", 30));
    }

    [Theory]
    [InlineData("```json\n{\"caption\": \"x\", \"tags\": []}\n```", null)]
    [InlineData("Here you go: {\"caption\": \"x\", \"tags\": []} Hope it helps!", null)]
    [InlineData("", "the answer was empty")]
    [InlineData("I cannot see the picture.", "the answer holds no JSON object")]
    [InlineData("{\"caption\": \"x\", \"tags\": [\"a\",}", "the answer is not valid JSON")]
    public void A_model_answer_is_found_in_fences_and_prose_and_broken_JSON_is_named(string answer, string? problem)
    {
        var found = ModelClient.Parse(answer, out var json);
        if (problem is null)
        {
            Assert.Null(found);
            Assert.Equal("x", json!["caption"]!.GetValue<string>());
        }
        else
        {
            Assert.StartsWith(problem, found, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("""{"title": "T", "description": "D", "tags": ["a"], "objects": [], "text": "", "language": "en"}""", null)]
    [InlineData("""{"title": "", "description": "D", "tags": [], "objects": [], "text": "", "language": "en"}""", "\"title\" must be")]
    [InlineData("""{"title": "T", "description": "D", "tags": "a, b", "objects": [], "text": "", "language": "en"}""", "\"tags\" must be")]
    [InlineData("""{"title": "T", "description": "D", "tags": [3], "objects": [], "text": "", "language": "en"}""", "\"tags\" must be")]
    [InlineData("""{"title": "T", "description": "D", "tags": [], "objects": [], "language": "en"}""", "\"text\" must be")]
    [InlineData("""{"title": "T", "description": "D", "tags": [], "objects": [], "text": "", "language": "English"}""", "\"language\" must be")]
    [InlineData("""{"title": "T", "description": "D", "tags": [], "objects": [], "text": "", "language": "de", "mood": "happy"}""", "unexpected field \"mood\"")]
    public void The_fused_description_is_checked_field_by_field(string answer, string? problem)
    {
        var found = FusionStage.Validate(JsonNode.Parse(answer)!.AsObject());
        if (problem is null)
        {
            Assert.Null(found);
        }
        else
        {
            Assert.StartsWith(problem, found, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Search_terms_are_words_only_so_nothing_typed_is_query_syntax()
    {
        Assert.Equal(["invoice", "or", "x", "near"], AnalysisStore.Terms("invoice\" OR \"x* NEAR("));
        Assert.Equal(["straße", "köln"], AnalysisStore.Terms("Straße, KÖLN!"));
        Assert.Empty(AnalysisStore.Terms(" \"* () "));
        Assert.Equal(16, AnalysisStore.Terms(string.Join(' ', Enumerable.Range(0, 40).Select(i => "w" + i))).Count);
    }

    [Fact]
    public void Engine_blocks_in_a_migration_keep_only_the_engine_s_own_SQL()
    {
        const string sql = "CREATE TABLE a (x INTEGER);\n--@sqlite\nCREATE VIRTUAL TABLE s USING fts5(x);\n--@postgres\nCREATE INDEX i ON a USING GIN (x);\n--@end\nCREATE TABLE b (y {blob});\n";
        var sqlite = SqlDialect.Sqlite.Expand(sql);
        var postgres = SqlDialect.Postgres.Expand(sql);
        Assert.Contains("fts5", sqlite, StringComparison.Ordinal);
        Assert.DoesNotContain("GIN", sqlite, StringComparison.Ordinal);
        Assert.Contains("GIN", postgres, StringComparison.Ordinal);
        Assert.DoesNotContain("fts5", postgres, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE b (y BLOB)", sqlite, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE b (y BYTEA)", postgres, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => SqlDialect.Sqlite.Expand("--@mysql\nSELECT 1;"));
    }
}
