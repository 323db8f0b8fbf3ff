using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Conic.Configuration;
using Conic.Methods;
using Conic.Training;

namespace Conic.Cli;

/// <summary>
/// The pretraining settings (declared next to the records they set) as System.CommandLine options of a command, how
/// the given ones change <see cref="PretrainOptions"/>, and that command's <c>--help</c>, grouped as common, data,
/// backbone, augmentation and the chosen method.
/// </summary>
sealed class SettingOptions
{
    readonly Dictionary<string, Option<string[]>> _options = new();
    readonly bool _withMethods;

    /// <param name="withMethods">Whether the method and its settings are options (pretrain), or set per entry (compare).</param>
    public SettingOptions(Command command, bool withMethods)
    {
        _withMethods = withMethods;
        var settings = PretrainOptions.GeneralSettingGroups.SelectMany(g => g.Settings)
            .Concat(withMethods ? PretrainOptions.AllMethodSettings().Select(m => m.Setting) : []);
        foreach (var setting in settings.Where(s => withMethods || s.Flag != PretrainOptions.MethodFlag))
        {
            if (_options.ContainsKey(setting.Flag)) continue;  // settings shared by two methods (MoCo v1 and v2)
            // Given twice, the last value counts (as scripts that append a flag expect).
            var option = new Option<string[]>(setting.Flag) { HelpName = setting.ValueName, Description = setting.Help, Arity = ArgumentArity.OneOrMore };
            _options[setting.Flag] = option;
            command.Add(option);
        }
    }

    /// <summary>The value given for <paramref name="flag"/>, or null.</summary>
    public string? Given(ParseResult result, string flag) =>
        _options.TryGetValue(flag, out var option) && result.GetResult(option) != null ? result.GetValue(option)![^1] : null;

    /// <summary>The given settings applied to <paramref name="start"/>: a method or preset first, then the settings that refine it.</summary>
    public PretrainOptions Apply(ParseResult result, PretrainOptions start)
    {
        var given = _options.Where(o => result.GetResult(o.Value) != null).Select(o => (Flag: o.Key, Value: result.GetValue(o.Value)![^1])).ToList();
        var first = PretrainOptions.SettingGroups(start.MethodDefinition).SelectMany(g => g.Settings).Where(s => s.AppliedFirst).Select(s => s.Flag).ToHashSet();
        var options = start;
        foreach (var (flag, value) in given.OrderBy(g => first.Contains(g.Flag) ? 0 : 1)) options = options.Set(flag, value);
        return options;
    }

    /// <summary>Replaces the command's help with one grouped by settings, showing the values <paramref name="current"/> gives.</summary>
    public void UseGroupedHelp(Command command, string summary, Func<ParseResult, PretrainOptions> current, params Option[] commandOptions)
    {
        // The root's --help reaches every command; this command's own takes its place here.
        command.Add(new HelpOption { Action = new GroupedHelp(this, command, summary, current, commandOptions) });
    }

    sealed class GroupedHelp(SettingOptions owner, Command command, string summary, Func<ParseResult, PretrainOptions> current, Option[] commandOptions)
        : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult result)
        {
            PretrainOptions options;
            try
            {
                options = current(result);
            }
            catch (ConicException)
            {
                options = new PretrainOptions();
            }
            var text = new HelpText(Console.Out);
            text.Line($"usage: conic {command.Name} [options]");
            text.Line();
            text.Paragraph(summary);
            foreach (var (title, settings) in PretrainOptions.SettingGroups(options.MethodDefinition))
            {
                var shown = settings.Where(s => owner._options.ContainsKey(s.Flag)).ToList();
                if (shown.Count == 0) continue;
                text.Line();
                text.Line(title.StartsWith("method", StringComparison.Ordinal) ? $"{title}: {options.MethodDefinition.Summary}" : $"{title}:");
                foreach (var setting in shown)
                {
                    string value = setting.Current(options);
                    text.Option($"{setting.Flag} {setting.ValueName}", setting.Help + (value.Length > 0 ? $" (default: {value})" : ""));
                }
            }
            if (owner._withMethods)
            {
                text.Line();
                text.Paragraph($"other methods: {string.Join(", ", MethodRegistry.Names.Where(n => n != options.Method))}; " +
                               $"'conic {command.Name} --method NAME --help' lists a method's settings.");
            }
            text.Line();
            text.Line($"{command.Name}:");
            foreach (var option in commandOptions)
                text.Option(option.HelpName is string value ? $"{option.Name} {value}" : option.Name, option.Description ?? "");
            text.Option("-h, --help", "show this help");
            return 0;
        }
    }

    /// <summary>Help lines with the descriptions wrapped to the terminal (100 columns when not a terminal).</summary>
    sealed class HelpText(TextWriter output)
    {
        const int Left = 32;
        readonly int _width = Console.IsOutputRedirected ? 100 : Math.Max(60, Console.WindowWidth);

        public void Line(string text = "") => output.WriteLine(text);

        public void Paragraph(string text)
        {
            foreach (string line in Wrap(text, _width)) output.WriteLine(line);
        }

        public void Option(string left, string description)
        {
            var lines = Wrap(description, _width - Left).ToList();
            string start = $"  {left}";
            if (start.Length >= Left) output.WriteLine(start);
            for (int i = 0; i < lines.Count; i++)
                output.WriteLine((i == 0 && start.Length < Left ? start.PadRight(Left) : new string(' ', Left)) + lines[i]);
        }

        static IEnumerable<string> Wrap(string text, int width)
        {
            foreach (string paragraph in text.Split('\n'))
            {
                var line = new System.Text.StringBuilder();
                foreach (string word in paragraph.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (line.Length > 0 && line.Length + 1 + word.Length > width)
                    {
                        yield return line.ToString();
                        line.Clear();
                    }
                    line.Append(line.Length > 0 ? " " : "").Append(word);
                }
                yield return line.ToString();
            }
        }
    }
}
