using System.Text.Json;
using System.Text.Json.Nodes;
using Fundament.Core.Http;
using Fundament.Events;
using Fundament.Events.Upcasting;

namespace Fundament.UnitTests.Events;

public sealed class UpcastChainTests
{
    private static UpcastOperation Op(string op, string path, string? to = null, object? value = null, bool? optional = null) =>
        new(op, path, to, value is null ? null : JsonSerializer.SerializeToElement(value), optional);

    private static UpcastChain Chain(params UpcastOperation[][] steps) =>
        new(steps.Select((operations, i) => new UpcastStep(i + 1, operations)).ToList());

    private static string Run(UpcastChain chain, string json, int version = 1) => chain.Apply(JsonNode.Parse(json), version)!.ToJsonString();

    [Fact]
    public void Steps_RunFromTheEventsVersion_ToTheCurrentOne()
    {
        var chain = Chain([Op("rename", "name", "fullName")], [Op("move", "fullName", "person.name")]);
        Assert.Equal(3, chain.CurrentVersion);
        Assert.Equal("""{"person":{"name":"Ada"}}""", Run(chain, """{"name":"Ada"}"""));
        Assert.Equal("""{"person":{"name":"Ada"}}""", Run(chain, """{"fullName":"Ada"}""", version: 2));
        Assert.Equal("""{"name":"Ada"}""", Run(chain, """{"name":"Ada"}""", version: 3));
        // Written by a newer writer: left alone.
        Assert.Equal("""{"x":1}""", Run(chain, """{"x":1}""", version: 9));
    }

    [Fact]
    public void ADefaultWithoutValue_SetsNull()
    {
        Assert.Equal("""{"a":1,"note":null}""", Run(Chain([Op("default", "note")]), """{"a":1}"""));
    }

    [Fact]
    public void Default_SetsOnlyWhatIsAbsent_CreatingParents_AndDrop_IgnoresWhatIsNotThere()
    {
        var chain = Chain([Op("default", "currency", value: "EUR"), Op("default", "shipping.method", value: "post"), Op("drop", "legacy"), Op("drop", "missing.deep")]);
        Assert.Equal("""{"currency":"USD","shipping":{"method":"post"}}""", Run(chain, """{"currency":"USD","legacy":true}"""));
        Assert.Equal("""{"shipping":{"method":"air"},"currency":"EUR"}""", Run(chain, """{"shipping":{"method":"air"}}"""));
    }

    [Fact]
    public void RenameAndMove_RefuseToOverwrite_AndFailOnAMissingSource_UnlessOptional()
    {
        var collide = Chain([Op("rename", "a", "b")]);
        var failure = Assert.Throws<UpcastFailedException>(() => Run(collide, """{"a":1,"b":2}"""));
        Assert.Equal(1, failure.FromVersion);
        Assert.Contains("'b' exists already", failure.Message);

        Assert.Contains("'a' is missing", Assert.Throws<UpcastFailedException>(() => Run(collide, "{}")).Message);
        Assert.Equal("{}", Run(Chain([Op("rename", "a", "b", optional: true)]), "{}"));

        var intoScalar = Chain([Op("move", "a", "b.c")]);
        Assert.Contains("'b' is a number, not an object", Assert.Throws<UpcastFailedException>(() => Run(intoScalar, """{"a":1,"b":2}""")).Message);
        Assert.Contains("not an object", Assert.Throws<UpcastFailedException>(() => Run(intoScalar, "[1,2]")).Message);
    }

    [Fact]
    public void Validate_NamesEveryBadField()
    {
        var errors = new ValidationErrors();
        UpcastChain.Validate([new UpcastStep(2, [Op("rename", "a", "x.y"), Op("nope", "a"), Op("move", "a", "a.b"), Op("drop", "a..b")])], 10, errors);
        var fields = errors.ToProblem().ProblemDetails.Errors.Keys;
        Assert.Equal(["steps[0].fromVersion", "steps[0].operations[0].to", "steps[0].operations[1].op", "steps[0].operations[2].to", "steps[0].operations[3].path"], fields.Order());
    }
}
