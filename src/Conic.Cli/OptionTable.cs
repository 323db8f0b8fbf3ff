using System.Globalization;
using Conic;

namespace Conic.Cli;

/// <summary>
/// A command's options: each has a name, a help line, its default as text and how it changes the settings.
/// Parsing and --help both come from this one table, so the help can never disagree with the parser.
/// </summary>
sealed class OptionTable(string command, string summary)
{
    sealed record Entry(string Name, string? ValueName, string Help, Func<string> Default, Action<string> Apply, bool First);

    readonly List<Entry> _entries = new();

    /// <param name="first">Applied before all other options wherever it stands (a preset that others refine).</param>
    public void Value(string name, string valueName, string help, Func<object?> current, Action<string> apply, bool first = false) =>
        _entries.Add(new Entry(name, valueName, help, () => Format(current()), apply, first));

    public void Flag(string name, string help, Action apply) =>
        _entries.Add(new Entry(name, null, help, () => "", _ => apply(), First: false));

    /// <summary>Applies the arguments; returns false when help was asked for (and printed).</summary>
    public bool Parse(IReadOnlyList<string> args)
    {
        var parsed = new List<(Entry Entry, string Value)>();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg is "--help" or "-h")
            {
                PrintHelp();
                return false;
            }
            string name = arg, value = "";
            int equals = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && equals > 0)
            {
                name = arg[..equals];
                value = arg[(equals + 1)..];
            }
            var entry = _entries.FirstOrDefault(e => e.Name == name)
                        ?? throw new ConicException($"{arg}: unknown option for 'conic {command}' (see conic {command} --help)");
            if (entry.ValueName != null && equals < 0)
            {
                if (i + 1 >= args.Count) throw new ConicException($"{name}: needs a value ({entry.ValueName})");
                value = args[++i];
            }
            parsed.Add((entry, value));
        }
        foreach (var (entry, value) in parsed.OrderBy(p => p.Entry.First ? 0 : 1)) entry.Apply(value);
        return true;
    }

    public void PrintHelp()
    {
        Console.WriteLine($"usage: conic {command} [options]\n\n{summary}\n\noptions:");
        foreach (var e in _entries)
        {
            string left = e.ValueName == null ? e.Name : $"{e.Name} {e.ValueName}";
            string defaultText = e.Default();
            Console.WriteLine($"  {left,-28} {e.Help}{(defaultText.Length > 0 ? $" (default: {defaultText})" : "")}");
        }
        Console.WriteLine($"  {"-h, --help",-28} show this help");
    }

    static string Format(object? value) => value switch
    {
        null => "",
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        Enum e => e.ToString().ToLowerInvariant(),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    public static int Int(string option, string text, int min = int.MinValue) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min
            ? v
            : throw new ConicException($"{option}: '{text}' is not an integer{(min > int.MinValue ? $" >= {min}" : "")}");

    public static double Double(string option, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)
            ? v
            : throw new ConicException($"{option}: '{text}' is not a number");

    public static T Choice<T>(string option, string text, params (string Name, T Value)[] choices) =>
        choices.FirstOrDefault(c => c.Name.Equals(text, StringComparison.OrdinalIgnoreCase)) is { Name: not null } hit
            ? hit.Value
            : throw new ConicException($"{option}: '{text}' is not one of {string.Join(", ", choices.Select(c => c.Name))}");
}
