using System.Reflection;
using System.Reflection.Emit;

namespace AttentionViz.Backend.Tests.Runtime;

/// <summary>
/// The backend's namespaces form layers: a namespace may use the ones below it, never one that uses it back. Read from
/// the compiled assembly (signatures and IL), so references through a parent namespace or a full name count too
/// (constants are inlined by the compiler and leave no trace, which is harmless: they create no dependency at run time).
/// A sub-namespace listed in <see cref="PartsOfTheirParent"/> is a part of its parent's area and may use it
/// (Tokenization.HuggingFace builds Tokenization's tokens, and Tokenization's loader builds it), so its edges to its
/// ancestors are not counted. Any other sub-namespace is an area of its own (Models.Core holds the blocks Models
/// assembles), and its edges to its ancestors count like any other.
/// </summary>
[TestClass]
public sealed class NamespaceCycleTests
{
    private static readonly Assembly BackendAssembly = typeof(global::AttentionViz.Backend.Runtime.BackendHost).Assembly;

    [TestMethod]
    public void NamespaceGraphIsAcyclic()
    {
        var graph = NamespaceGraph(BackendAssembly);
        var cycle = FindCycle(graph);
        Assert.IsNull(cycle, cycle is null ? null : "namespace cycle: " + string.Join(" -> ", cycle) + Describe(graph));
    }

    [TestMethod]
    public void TheCheckSeesACycle()
    {
        var graph = new Dictionary<string, HashSet<string>>
        {
            ["A"] = ["B"], ["B"] = ["C"], ["C"] = ["A"], ["D"] = ["A"],
        };
        CollectionAssert.AreEqual(new[] { "A", "B", "C", "A" }, FindCycle(graph));
        graph["C"].Clear();
        Assert.IsNull(FindCycle(graph));
    }

    [TestMethod]
    public void OnlyTheListedPartsMayUseTheirParent()
    {
        // Before, every child → ancestor edge was dropped: Models.Core using Models went unseen.
        Assert.IsTrue(Counts("AttentionViz.Backend.Models.Core", "AttentionViz.Backend.Models"));
        Assert.IsFalse(Counts("AttentionViz.Backend.Tokenization.HuggingFace", "AttentionViz.Backend.Tokenization"));
        Assert.IsTrue(Counts("AttentionViz.Backend.Tokenization.HuggingFace", "AttentionViz.Backend.Models"));
        Assert.IsFalse(Counts("AttentionViz.Backend.Models", "AttentionViz.Backend.Models"));
    }

    [TestMethod]
    public void TheGraphSeesReferencesInMethodBodies()
    {
        // BackendHost only news up the RPC server inside its constructor: an IL-only reference.
        Assert.Contains("AttentionViz.Backend.Rpc", NamespaceGraph(BackendAssembly)["AttentionViz.Backend.Runtime"]);
    }

    private static string Describe(Dictionary<string, HashSet<string>> graph) =>
        "\n" + string.Join("\n", graph.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => $"{p.Key} -> {string.Join(", ", p.Value.Order(StringComparer.Ordinal))}"));

    /// <summary>The first cycle found by a depth-first search, as a path that ends where it starts; null if none.</summary>
    internal static string[]? FindCycle(Dictionary<string, HashSet<string>> graph)
    {
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 = on the path, 2 = done
        var path = new List<string>();
        foreach (var start in graph.Keys.Order(StringComparer.Ordinal))
            if (Visit(start) is { } found) return found;
        return null;

        string[]? Visit(string node)
        {
            if (state.GetValueOrDefault(node) == 2) return null;
            if (state.GetValueOrDefault(node) == 1) return [.. path.Skip(path.IndexOf(node)), node];
            state[node] = 1;
            path.Add(node);
            foreach (var next in graph.GetValueOrDefault(node, []).Order(StringComparer.Ordinal))
                if (Visit(next) is { } found) return found;
            path.RemoveAt(path.Count - 1);
            state[node] = 2;
            return null;
        }
    }

    /// <summary>Namespace → the other backend namespaces its types refer to.</summary>
    internal static Dictionary<string, HashSet<string>> NamespaceGraph(Assembly assembly)
    {
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var type in assembly.GetTypes())
        {
            var from = NamespaceOf(type);
            if (from is null) continue;
            var uses = graph.TryGetValue(from, out var set) ? set : graph[from] = new(StringComparer.Ordinal);
            foreach (var used in ReferencedTypes(type))
                if (used.Assembly == assembly && NamespaceOf(used) is { } to && Counts(from, to))
                    uses.Add(to);
        }
        return graph;
    }

    /// <summary>The sub-namespaces that are a part of their parent's area (see the class comment).</summary>
    private static readonly string[] PartsOfTheirParent = ["AttentionViz.Backend.Tokenization.HuggingFace"];

    /// <summary>Whether a reference from namespace <paramref name="from"/> to <paramref name="to"/> is an edge.</summary>
    internal static bool Counts(string from, string to) =>
        from != to && !(PartsOfTheirParent.Contains(from) && from.StartsWith(to + ".", StringComparison.Ordinal));

    /// <summary>The namespace of the outermost declaring type (compiler-generated closures sit inside their user).</summary>
    private static string? NamespaceOf(Type type)
    {
        while (type.DeclaringType is not null) type = type.DeclaringType;
        return type.Namespace is { } ns && ns.StartsWith("AttentionViz.Backend", StringComparison.Ordinal) ? ns : null;
    }

    private const BindingFlags Declared =
        BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static IEnumerable<Type> ReferencedTypes(Type type)
    {
        var found = new List<Type>();
        if (type.BaseType is { } baseType) found.Add(baseType);
        found.AddRange(type.GetInterfaces());
        found.AddRange(type.GetCustomAttributesData().Select(a => a.AttributeType));
        foreach (var field in type.GetFields(Declared)) found.Add(field.FieldType);
        foreach (var property in type.GetProperties(Declared)) found.Add(property.PropertyType);
        foreach (var method in type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared)))
        {
            if (method is MethodInfo info) found.Add(info.ReturnType);
            found.AddRange(method.GetParameters().Select(p => p.ParameterType));
            found.AddRange(BodyReferences(method));
        }
        return found.SelectMany(Expand);
    }

    /// <summary>A type with its element type and generic arguments, recursively.</summary>
    private static IEnumerable<Type> Expand(Type type)
    {
        if (type.HasElementType) return Expand(type.GetElementType()!);
        if (!type.IsGenericType) return [type];
        return type.GetGenericArguments().SelectMany(Expand).Prepend(type.GetGenericTypeDefinition());
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(op => op.Value);

    /// <summary>The types named by the method body's type, field, method and token operands.</summary>
    private static IEnumerable<Type> BodyReferences(MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null) yield break;
        var module = method.Module;
        var typeArguments = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (var at = 0; at < il.Length;)
        {
            short value = il[at++];
            if (value == 0xFE) value = (short)(0xFE00 | il[at++]);
            var op = OpCodesByValue[value];
            var operandSize = op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, at),
                _ => 4,
            };
            if (op.OperandType is OperandType.InlineType or OperandType.InlineField or OperandType.InlineMethod
                or OperandType.InlineTok)
            {
                var member = module.ResolveMember(BitConverter.ToInt32(il, at), typeArguments, methodArguments);
                if (member is Type referenced) yield return referenced;
                else if (member?.DeclaringType is { } declaring) yield return declaring;
                if (member is MethodInfo called)
                {
                    yield return called.ReturnType;
                    if (called.IsGenericMethod)
                        foreach (var argument in called.GetGenericArguments()) yield return argument;
                }
                if (member is FieldInfo field) yield return field.FieldType;
            }
            at += operandSize;
        }
    }
}
