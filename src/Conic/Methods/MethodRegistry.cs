namespace Conic.Methods;

/// <summary>
/// Every pretraining method. To add one: a file with the method, its settings record and its
/// <see cref="MethodDefinition"/>; its line here; a test ("Adding a method" in docs/layout.md).
/// </summary>
public static class MethodRegistry
{
    /// <summary>Every method, in the order help and comparisons list them.</summary>
    public static readonly IReadOnlyList<MethodDefinition> All =
    [
        ConicMethod.Definition,
        InstDiscMethod.Definition,
        MocoMethod.Version1,
        MocoMethod.Version2,
        SimclrMethod.Definition,
        ByolMethod.Definition,
        SwavMethod.Definition,
        VicregMethod.Definition,
        DinoMethod.Definition,
        SupervisedMethod.Definition,
    ];

    /// <summary>The methods' names as <c>--method</c> takes them.</summary>
    public static IEnumerable<string> Names => All.Select(m => m.Name);

    /// <summary>The method called <paramref name="name"/> (case-insensitive), or null.</summary>
    public static MethodDefinition? Find(string name) => All.FirstOrDefault(m => m.Name.Equals(name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The method called <paramref name="name"/>, or a one-line error listing the known ones.</summary>
    public static MethodDefinition Get(string name) =>
        Find(name) ?? throw new ConicException($"unknown method '{name}' (known: {string.Join(", ", Names)})");
}
