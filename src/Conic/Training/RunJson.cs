using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conic.Training;

/// <summary>The JSON settings of every file Conic writes into a run folder (config, checkpoint header, eval).</summary>
public static class RunJson
{
    /// <summary>snake_case names, enums as lower-case strings, indented; pretraining options with their method's section.</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new ArchitectureName(), new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower), new PretrainOptionsJson() },
    };

    /// <summary>
    /// The backbone as the CLI names it (<c>resnet18</c>, <c>resnet50</c>), not snake_case's <c>res_net18</c>; that older
    /// spelling, in run folders written before 2026-12-01, is still read.
    /// </summary>
    sealed class ArchitectureName : JsonConverter<Models.ResNetDepth>
    {
        public override Models.ResNetDepth Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.GetString()?.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant() switch
            {
                "resnet18" => Models.ResNetDepth.ResNet18,
                "resnet50" => Models.ResNetDepth.ResNet50,
                var other => throw new JsonException($"'{other}' is not a backbone (resnet18 or resnet50)"),
            };

        public override void Write(Utf8JsonWriter writer, Models.ResNetDepth value, JsonSerializerOptions options) =>
            writer.WriteStringValue(value.ToString().ToLowerInvariant());
    }

    /// <summary>Reads a run file written by <see cref="WriteAtomically"/>; a damaged file is a one-line error naming it.</summary>
    public static T Read<T>(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Options) ?? throw new JsonException("the file holds null");
        }
        catch (JsonException e)
        {
            throw new ConicException($"{path}: not a valid {typeof(T).Name} file ({e.Message})");
        }
    }

    /// <summary>Writes <paramref name="value"/> as JSON through a temporary file and a rename.</summary>
    public static void WriteAtomically<T>(string path, T value) =>
        Runtime.AtomicFile.Write(path, stream => JsonSerializer.Serialize(stream, value, Options));
}
