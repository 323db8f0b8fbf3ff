using System.CommandLine;

namespace Conic.Cli;

/// <summary>
/// A command line that does not parse, in one line. System.CommandLine prints its own errors over several lines with
/// help; Conic's rule is one line that names the problem, so the first error is reworded here, with the nearest
/// option for a misspelt one.
/// </summary>
static class ParseErrors
{
    public static string Describe(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        string name = command is RootCommand ? "conic" : $"conic {command.Name}";
        string? unknown = parsed.UnmatchedTokens.FirstOrDefault();
        if (unknown == null) return $"{OneLine(parsed.Errors[0].Message)} (see {name} --help)";
        if (command is RootCommand && !unknown.StartsWith('-'))
            return $"'{unknown}' is not a conic command ({Suggestion(unknown, command.Subcommands.Select(c => c.Name))}" +
                   $"commands: {string.Join(", ", command.Subcommands.Select(c => c.Name))}; see conic --help)";
        if (!unknown.StartsWith('-')) return $"'{unknown}': an argument no option takes (each option takes one value; see {name} --help)";
        return $"{unknown}: unknown option for '{name}' ({Suggestion(unknown, command.Options.SelectMany(o => o.Aliases.Append(o.Name)))}see {name} --help)";
    }

    /// <summary>"did you mean X? " for the nearest of <paramref name="known"/> when it is near enough to be a slip, else "".</summary>
    static string Suggestion(string unknown, IEnumerable<string> known)
    {
        var nearest = known.Select(name => (name, distance: EditDistance(unknown, name))).MinBy(n => n.distance);
        return nearest.name != null && nearest.distance <= Math.Max(2, unknown.Length / 4) ? $"did you mean {nearest.name}? " : "";
    }

    static string OneLine(string message) => string.Join(" ", message.Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>Levenshtein distance; System.CommandLine's own typo suggestions are printed, not returned.</summary>
    static int EditDistance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            previous = current;
        }
        return previous[b.Length];
    }
}
