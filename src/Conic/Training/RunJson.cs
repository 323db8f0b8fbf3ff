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

    /// <summary>Writes <paramref name="value"/> as JSON through a temporary file and a rename.</summary>
    public static void WriteAtomically<T>(string path, T value) =>
        Runtime.AtomicFile.Write(path, stream => JsonSerializer.Serialize(stream, value, Options));
}
