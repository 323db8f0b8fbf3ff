using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Conic.Methods;

namespace Conic.Training;

/// <summary>
/// <see cref="PretrainOptions"/> in JSON with the chosen method's settings in a section named after it
/// (<c>"method": "conic", "conic": {...}</c>). Run files written before 2026-12-01 held a section for every method
/// (InstDisc's as <c>inst_disc</c>, both MoCos' as <c>moco</c>): the chosen method's section is read, the others dropped.
/// </summary>
sealed class PretrainOptionsJson : JsonConverter<PretrainOptions>
{
    static readonly IReadOnlyDictionary<string, string> OlderSectionNames = new Dictionary<string, string>
    {
        ["instdisc"] = "inst_disc", ["mocov1"] = "moco", ["mocov2"] = "moco",
    };

    /// <summary>The caller's serializer settings without this converter, for everything but the method section.</summary>
    static readonly ConditionalWeakTable<JsonSerializerOptions, JsonSerializerOptions> Inner = new();

    static JsonSerializerOptions InnerOf(JsonSerializerOptions options) => Inner.GetValue(options, outer =>
    {
        var inner = new JsonSerializerOptions(outer);
        inner.Converters.Remove(inner.Converters.First(c => c is PretrainOptionsJson));
        return inner;
    });

    public override PretrainOptions Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var node = JsonNode.Parse(ref reader) as JsonObject ?? throw new JsonException("pretraining options must be a JSON object");
        var inner = InnerOf(options);
        string methodName = node["method"] switch
        {
            null => new PretrainOptions().Method,
            JsonValue value when value.TryGetValue(out string? name) => name,
            _ => throw new JsonException("'method' must be a method's name"),
        };
        var method = MethodRegistry.Find(methodName)
                     ?? throw new JsonException($"'{methodName}' is not a method (known: {string.Join(", ", MethodRegistry.Names)})");
        var section = node[method.Name] ?? (OlderSectionNames.TryGetValue(method.Name, out string? older) ? node[older] : null);
        foreach (string name in MethodRegistry.Names.Concat(OlderSectionNames.Values)) node.Remove(name);
        var settings = section == null ? method.Defaults : (MethodSettings?)section.Deserialize(method.Defaults.GetType(), inner)
                       ?? throw new JsonException($"the '{method.Name}' section is empty");
        var read = node.Deserialize<PretrainOptions>(inner) ?? throw new JsonException("no options");
        return read with { Method = method.Name, MethodSettings = settings };
    }

    public override void Write(Utf8JsonWriter writer, PretrainOptions value, JsonSerializerOptions options)
    {
        var inner = InnerOf(options);
        var node = (JsonObject)JsonSerializer.SerializeToNode(value, inner)!;
        writer.WriteStartObject();
        foreach (var (name, property) in node)
        {
            writer.WritePropertyName(name);
            if (property == null) writer.WriteNullValue();
            else property.WriteTo(writer, inner);
            if (name != "method") continue;
            writer.WritePropertyName(value.Method);
            JsonSerializer.Serialize(writer, value.MethodSettings, value.MethodSettings.GetType(), inner);
        }
        writer.WriteEndObject();
    }
}
