using System.Text.Json;
using System.Text.Json.Serialization;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Rpc;

namespace AttentionViz.Backend.Tests.Rpc;

/// <summary>The backend's units converter writes what the default serialisation writes, the first time and from its
/// cache, and a different array (another analysis's units) gets its own JSON.</summary>
[TestClass]
public sealed class UnitsJsonConverterTests
{
    [TestMethod]
    public void WritesTheDefaultJsonEveryTime()
    {
        var options = BackendServer.CreateFormatter().JsonSerializerOptions;
        var plain = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        };
        var units = new[] { new ViewUnit("[CLS]", 0, 0, 0, 0, true), new ViewUnit("a\tb\"<x>\u200b", 0, 7, 1, 2, false) };
        var expected = JsonSerializer.Serialize(new { units, rows = 2 }, plain);
        Assert.AreEqual(expected, JsonSerializer.Serialize(new { units, rows = 2 }, options));
        Assert.AreEqual(expected, JsonSerializer.Serialize(new { units, rows = 2 }, options), "from the cache");
        StringAssert.Contains(expected, "\"display\":");

        var other = new[] { new ViewUnit("dog", 3, 6, 0, 0, false) };
        Assert.AreEqual(JsonSerializer.Serialize(other, plain), JsonSerializer.Serialize(other, options));
    }
}
