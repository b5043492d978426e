using System.Text.Json;
using Fundament.Client.Events;

namespace Fundament.UnitTests.Client;

public sealed class EventTypeMapTests
{
    private sealed record PlacedV1(string Customer, decimal Total);

    private sealed record Placed(string Customer, decimal Total, string Currency);

    private static StoredEvent Event(string type, int schemaVersion, object data, EventTypeMap map) =>
        new StoredEvent("id", "order-1", 0, 1, type, schemaVersion, JsonSerializer.SerializeToElement(data, JsonSerializerOptions.Web), null, DateTimeOffset.UnixEpoch) { Map = map };

    private static EventTypeMap Map()
    {
        var map = new EventTypeMap();
        map.Map<Placed>("Placed", schemaVersion: 3).Upcast<PlacedV1>(1, v1 => new Placed(v1.Customer, v1.Total, "EUR"));
        return map;
    }

    [Fact]
    public void CurrentEvents_DeserializeAsTheMappedType_OlderOnes_ThroughTheirUpcaster()
    {
        var map = Map();
        Assert.Equal(new Placed("Ada", 3, "USD"), Event("Placed", 3, new { customer = "Ada", total = 3, currency = "USD" }, map).As<Placed>());
        Assert.Equal(new Placed("Ada", 3, "EUR"), Event("Placed", 1, new { customer = "Ada", total = 3 }, map).As<Placed>());
        // Written by a newer writer, or upcast by the server already: read as the mapped type.
        Assert.Equal(new Placed("Ada", 3, "GBP"), Event("Placed", 4, new { customer = "Ada", total = 3, currency = "GBP" }, map).As<Placed>());
        Assert.Null(Event("Unmapped", 1, new { }, map).Deserialize());
        Assert.Equal(("Placed", 3), map.NameOf(typeof(Placed)));
    }

    [Fact]
    public void AnOlderVersionWithoutAnUpcaster_IsRefused_NotGuessed()
    {
        var failure = Assert.Throws<EventVersionException>(() => Event("Placed", 2, new { customer = "Ada", total = 3 }, Map()).Deserialize());
        Assert.Contains("schema version 2", failure.Message);
    }

    [Fact]
    public void Mistakes_FailWhenTheMapIsBuilt()
    {
        var map = Map();
        Assert.Throws<InvalidOperationException>(() => map.Map<Placed>("Other"));
        Assert.Throws<InvalidOperationException>(() => map.Map<PlacedV1>("Placed"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new EventTypeMap().Map<Placed>("Placed", 2).Upcast<PlacedV1>(2, v => new Placed(v.Customer, v.Total, "")));
        Assert.Throws<InvalidOperationException>(() => map.NameOf(typeof(string)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpectedVersion.Exactly(-1));
        Assert.Equal("7", ExpectedVersion.Exactly(7).ToString());
        Assert.Equal("no_stream", ExpectedVersion.NoStream.ToString());
    }
}
