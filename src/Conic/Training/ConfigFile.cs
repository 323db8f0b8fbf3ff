using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Conic.Training;

/// <summary>
/// <c>--config FILE</c>: pretraining options from YAML (.yaml, .yml) or JSON, with the names config.json uses
/// (snake_case; nested sections such as <c>conic:</c> or <c>augmentation:</c>), so any run's config.json is a valid
/// config. Options left out keep their defaults; a name that is not an option is an error naming it.
/// </summary>
public static class ConfigFile
{
    static readonly JsonSerializerOptions Strict = new(RunJson.Options) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };

    public static PretrainOptions Read(string path)
    {
        if (!File.Exists(path)) throw new ConicException($"{path}: no such config file (--config)");
        try
        {
            string extension = Path.GetExtension(path).ToLowerInvariant();
            JsonNode? node = extension is ".yaml" or ".yml" ? FromYaml(File.ReadAllText(path)) : JsonNode.Parse(File.ReadAllText(path));
            return node.Deserialize<PretrainOptions>(Strict) ?? throw new JsonException("the file holds no options");
        }
        catch (JsonException e)
        {
            throw new ConicException($"{path}: not a valid config ({e.Message.Split('\n')[0]})");
        }
        catch (YamlException e)
        {
            throw new ConicException($"{path}: not valid YAML at line {e.Start.Line} ({e.Message})");
        }
    }

    /// <summary>The YAML document as JSON: unquoted scalars that read as numbers, booleans or null become those.</summary>
    static JsonNode? FromYaml(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return stream.Documents.Count == 0 ? null : Convert(stream.Documents[0].RootNode);
    }

    static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlMappingNode mapping => new JsonObject(mapping.Children.Select(kv =>
            KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", Convert(kv.Value)))),
        YamlSequenceNode sequence => new JsonArray(sequence.Children.Select(Convert).ToArray()),
        YamlScalarNode { Style: ScalarStyle.Plain } scalar => Plain(scalar.Value ?? ""),
        YamlScalarNode scalar => JsonValue.Create(scalar.Value),
        _ => throw new YamlException(node.Start, node.End, "anchors and aliases are not supported in config files"),
    };

    static JsonNode? Plain(string value)
    {
        if (value is "" or "~" or "null") return null;
        if (value is "true" or "false") return JsonValue.Create(value == "true");
        if (long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long integer)) return JsonValue.Create(integer);
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double number)) return JsonValue.Create(number);
        return JsonValue.Create(value);
    }
}
