using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Conic.Training;

/// <summary>
/// <c>--config FILE</c> and a run's config.json: pretraining options from YAML (.yaml, .yml) or JSON, named as on the
/// command line (<c>lr: 0.24</c>, <c>lambda: 1</c>, <c>batch-size: 32</c>, <c>run: runs/x</c>), as config.json names
/// them since 2026-12-07, or by the record names older config.json files used (snake_case; nested sections such as
/// <c>conic:</c> or <c>augmentation:</c>), so any run's config.json is a valid config. Options left out keep their
/// defaults; a name that is neither is an error naming it.
/// </summary>
public static class ConfigFile
{
    static readonly JsonSerializerOptions Strict = new(RunJson.Options) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };

    /// <summary>The pretraining options a YAML or JSON config file gives; a problem is a one-line error naming the file.</summary>
    public static PretrainOptions Read(string path)
    {
        if (!File.Exists(path)) throw new ConicException($"{path}: no such config file (--config)");
        try
        {
            string extension = Path.GetExtension(path).ToLowerInvariant();
            JsonNode? node = extension is ".yaml" or ".yml" ? FromYaml(File.ReadAllText(path)) : JsonNode.Parse(File.ReadAllText(path));
            var derived = node is JsonObject root ? DerivedKeys.Where(root.ContainsKey).ToDictionary(key => key, key => root[key]?.DeepClone()) : [];
            foreach (string key in derived.Keys) ((JsonObject)node!).Remove(key);
            var flags = TakeFlags(node as JsonObject);
            var options = node.Deserialize<PretrainOptions>(Strict) ?? throw new JsonException("the file holds no options");
            CheckDerived(path, options, derived);
            // As on the command line: presets (the augmentation) first, so that the settings they set can be refined.
            foreach (var (flag, text) in flags.OrderByDescending(f => PretrainOptions.FindSetting(f.Flag, options.Method)?.AppliedFirst == true))
                options = options.Set(flag, text);
            return options;
        }
        catch (JsonException e)
        {
            throw new ConicException($"{path}: not a valid config ({e.Message.Split('\n')[0]})");
        }
        catch (ConicException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new ConicException($"{path}: {e.Message}");
        }
        catch (YamlException e)
        {
            throw new ConicException($"{path}: not valid YAML at line {e.Start.Line}, column {e.Start.Column} ({e.Message})");
        }
    }

    /// <summary>
    /// <paramref name="options"/> as config.json holds them: the method, then every setting under its flag's name
    /// (<c>lr</c>, <c>lambda</c>, <c>batch-size</c>), numbers as numbers. Unset settings (left to the method or the
    /// images) and presets (their settings are written one by one) are left out, and so is the input's channel count,
    /// which a run takes from its images. <see cref="Read"/> reads it back to the same options.
    /// </summary>
    public static string ToJson(PretrainOptions options)
    {
        var root = new JsonObject { ["method"] = options.Method };
        foreach (var setting in PretrainOptions.SettingGroups(options.MethodDefinition).SelectMany(g => g.Settings).Where(s => !s.AppliedFirst))
        {
            var value = setting.Value(options) switch
            {
                null => null,
                double number => JsonValue.Create(number),
                int number => JsonValue.Create(number),
                bool on => JsonValue.Create(on),
                var other => JsonValue.Create(Configuration.SettingText.Format(other)),
            };
            if (value != null) root[setting.Flag[2..]] = value;
        }
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    static readonly JsonObject DefaultJson = JsonSerializer.SerializeToNode(new PretrainOptions(), RunJson.Options)!.AsObject();

    /// <summary>The names config.json uses at the top level (options and sections); any other name is read as a flag.</summary>
    static readonly HashSet<string> JsonNames = [.. DefaultJson.Select(kv => kv.Key), .. Methods.MethodRegistry.Names];

    /// <summary>config.json's sections (<c>augmentation:</c>, <c>backbone:</c>, each method's); a flag of the same name (<c>--augmentation</c>) takes one value instead.</summary>
    static readonly HashSet<string> JsonSections = [.. DefaultJson.Where(kv => kv.Value is JsonObject).Select(kv => kv.Key), .. Methods.MethodRegistry.Names];

    /// <summary>Every pretraining flag, of every method.</summary>
    static readonly HashSet<string> Flags =
        [.. PretrainOptions.GeneralSettingGroups.SelectMany(g => g.Settings).Select(s => s.Flag), .. PretrainOptions.AllMethodSettings().Select(m => m.Setting.Flag)];

    /// <summary>
    /// Removes the keys named like command-line flags (without the dashes) and returns them as flags and values;
    /// a key that is neither a flag nor a config.json name is left for the reader to refuse.
    /// </summary>
    static List<(string Flag, string Text)> TakeFlags(JsonObject? root)
    {
        var flags = new List<(string Flag, string Text)>();
        if (root == null) return flags;
        foreach (string key in root.Select(kv => kv.Key).ToList())
        {
            string flag = "--" + key;
            if (!Flags.Contains(flag)) continue;
            var node = root[key];
            bool flagOnly = !JsonNames.Contains(key) || JsonSections.Contains(key) && node is JsonValue;
            // A name both forms use (precision, prefetch, epochs) is the flag's when the flag takes its value, else the record's;
            // the method stays the record's, which picks the section of its settings in older files.
            if (!flagOnly && (key == "method" || !(node is JsonValue shared && FlagTakes(flag, Text(shared))))) continue;
            flags.Add((flag, node is JsonValue value ? Text(value) : throw new JsonException($"'{key}' takes one value, as {flag} does")));
            root.Remove(key);
        }
        return flags;
    }

    static string Text(JsonValue value) =>
        value.TryGetValue(out bool on) ? on ? "on" : "off" : value.TryGetValue(out string? text) ? text : value.ToJsonString();

    /// <summary>Whether <paramref name="flag"/> (one every method shares) accepts <paramref name="text"/>.</summary>
    static bool FlagTakes(string flag, string text)
    {
        try
        {
            PretrainOptions.FindSetting(flag, new PretrainOptions().Method)?.Apply(new PretrainOptions(), text);
            return true;
        }
        catch (ConicException)
        {
            return false;
        }
    }

    /// <summary>
    /// Keys config.json records for the reader but that follow from other options (the method's defaults, the learning
    /// rate scaled by the batch): accepted when they say what the options give (a run's config.json), an error otherwise,
    /// never silently ignored.
    /// </summary>
    static readonly string[] DerivedKeys = ["base_learning_rate", "optimizer_or_default", "weight_decay_or_default", "scaled_learning_rate"];

    static void CheckDerived(string path, PretrainOptions options, Dictionary<string, JsonNode?> given)
    {
        var actual = JsonSerializer.SerializeToNode(options, RunJson.Options)!.AsObject();
        foreach (var (key, value) in given)
        {
            var expected = actual[key];
            bool same = value is JsonValue v && expected is JsonValue e &&
                        (v.TryGetValue(out double a) && e.TryGetValue(out double b) ? Math.Abs(a - b) <= 1e-12 * Math.Max(1, Math.Abs(b)) : v.ToJsonString() == e.ToJsonString());
            if (!same)
                throw new ConicException($"{path}: '{key}' is derived from the other options ({expected?.ToJsonString()} here), not an option; " +
                                         $"it says {value?.ToJsonString() ?? "null"}: set {(key.Contains("learning_rate") ? "learning_rate (and batch_size)" : key.Replace("_or_default", ""))} instead");
        }
    }

    /// <summary>The YAML document as JSON: unquoted scalars that read as numbers, booleans or null become those.</summary>
    static JsonNode? FromYaml(string text)
    {
        var stream = new YamlStream();
        var parser = new Parser(new StringReader(text));
        try
        {
            stream.Load(parser);
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet says some structural faults without a position; the parser's last event has one.
            var at = parser.Current;
            throw new YamlException(at?.Start ?? Mark.Empty, at?.End ?? Mark.Empty, e.Message);
        }
        if (stream.Documents.Count > 1)
            throw new YamlException(stream.Documents[1].RootNode.Start, stream.Documents[1].RootNode.End, "a config file holds one document; this one has several ('---')");
        return stream.Documents.Count == 0 ? null : Convert(stream.Documents[0].RootNode);
    }

    static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlMappingNode mapping => new JsonObject(mapping.Children.Select(kv =>
            KeyValuePair.Create(kv.Key is YamlScalarNode key ? key.Value ?? "" : throw new YamlException(kv.Key.Start, kv.Key.End, "a key must be a name"),
                                Convert(kv.Value)))),
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
