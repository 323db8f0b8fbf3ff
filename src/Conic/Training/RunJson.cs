using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conic.Training;

/// <summary>The JSON settings of every file Conic writes into a run folder (config, checkpoint header, eval).</summary>
public static class RunJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

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
