using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace Conic.Cli;

/// <summary>
/// Every command's <c>--help</c>: a usage line, the command's summary, then its options in titled sections, wrapped to
/// the terminal (100 columns when not a terminal). System.CommandLine's own help leaves long descriptions on one line
/// when the output is redirected; this one reads the same everywhere.
/// </summary>
static class CommandHelp
{
    /// <summary>A titled list of options: what to type, and what it does.</summary>
    public sealed record Section(string Title, IReadOnlyList<(string Usage, string Description)> Rows);

    static readonly Dictionary<Command, (string Summary, Func<ParseResult, IEnumerable<Section>> Sections)> Custom = new();

    /// <summary>Gives <paramref name="command"/> a help of <paramref name="summary"/> and sections made from what was parsed (settings show their values then).</summary>
    public static void Use(Command command, string summary, Func<ParseResult, IEnumerable<Section>> sections) => Custom[command] = (summary, sections);

    /// <summary>Makes <paramref name="root"/>'s <c>--help</c> (which every command inherits) this help.</summary>
    public static void Install(RootCommand root) => root.Options.OfType<HelpOption>().Single().Action = new Shown(root);

    /// <summary>The options as help rows, each with its default when it has one worth showing.</summary>
    public static Section OptionsSection(string title, IEnumerable<Option> options) =>
        new(title, options.Where(o => o is not HelpOption and not VersionOption && !o.Hidden).Select(Row).Append(("-h, --help", "show this help")).ToList());

    static (string, string) Row(Option option)
    {
        string usage = option.HelpName is string value ? $"{option.Name} {value}" : option.Name;
        object? fallback = option.HasDefaultValue ? option.GetDefaultValue() : null;
        bool shown = fallback is not (null or false) && !(fallback is string text && text.Length == 0);
        return (usage, (option.Description ?? "") + (shown ? $" (default: {Configuration.SettingText.Format(fallback)})" : ""));
    }

    /// <summary>The first sentence of a command's description: its line in the list of commands.</summary>
    static string FirstSentence(string? description)
    {
        string text = description ?? "";
        int end = text.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? text.TrimEnd('.') : text[..end];
    }

    sealed class Shown(RootCommand root) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult result)
        {
            var command = result.CommandResult.Command;
            var text = new HelpText(Console.Out);
            if (command == root)
            {
                text.Line("usage: conic COMMAND [options]");
                text.Line();
                text.Paragraph(root.Description ?? "");
                text.Section(new Section("commands", root.Subcommands.Select(c => (c.Name, FirstSentence(c.Description))).ToList()));
                text.Line();
                text.Paragraph("'conic COMMAND --help' shows a command's options.");
                return 0;
            }
            var (summary, sections) = Custom.TryGetValue(command, out var custom)
                ? custom
                : (command.Description ?? "", _ => [OptionsSection("options", command.Options)]);
            text.Line($"usage: conic {command.Name} [options]");
            text.Line();
            text.Paragraph(summary);
            foreach (var section in sections(result)) text.Section(section);
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

        public void Section(Section section)
        {
            if (section.Rows.Count == 0) return;
            Line();
            Paragraph($"{section.Title}:");
            foreach (var (usage, description) in section.Rows) Option(usage, description);
        }

        void Option(string left, string description)
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
                foreach (string word in paragraph.Split(' ', StringSplitOptions.RemoveEmptyEntries).SelectMany(word => Pieces(word, width)))
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

        /// <summary>A word longer than a line (a default list) broken after its commas, or where it must.</summary>
        static IEnumerable<string> Pieces(string word, int width)
        {
            while (word.Length > width)
            {
                int cut = word.LastIndexOf(',', width - 1) + 1;
                if (cut <= 0) cut = width;
                yield return word[..cut];
                word = word[cut..];
            }
            yield return word;
        }
    }
}
