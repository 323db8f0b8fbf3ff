using static TorchSharp.torch;

namespace Conic.Distributed;

/// <summary>
/// How a row-sharded tensor ([rows, …], e.g. the N × D classifier) is split: rank r holds the contiguous block
/// [r·R, min(rows, (r+1)·R)) with R = ⌈rows / P⌉. Blocks are padded to R rows only while they travel.
/// </summary>
public readonly record struct RowShard(long Start, long Count, long BlockRows)
{
    /// <summary>This rank's block of <paramref name="rows"/> rows split over <paramref name="processes"/> (equal blocks, the last one shorter).</summary>
    public static RowShard Of(long rows, ProcessGroup processes)
    {
        long block = (rows + processes.Size - 1) / processes.Size;
        long start = Math.Min(rows, processes.Rank * block);
        return new RowShard(start, Math.Min(rows, start + block) - start, block);
    }

    /// <summary>This rank's rows of a whole tensor every rank holds.</summary>
    public Tensor Take(Tensor whole) => whole.narrow(0, Start, Count);

    /// <summary>The whole tensor, on every rank, from each rank's block.</summary>
    public static Tensor Gather(ProcessGroup processes, Tensor block, long rows)
    {
        if (!processes.IsDistributed) return block;
        using var scope = NewDisposeScope();
        var shard = Of(rows, processes);
        var padded = Padded(block, shard.BlockRows);
        return processes.AllGather(padded).narrow(0, 0, rows).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Each rank's block of <paramref name="whole"/>, which only the root passes.</summary>
    public static Tensor Scatter(ProcessGroup processes, Tensor? whole, long rows, long[] rowShape, ScalarType type)
    {
        using var scope = NewDisposeScope();
        var shard = Of(rows, processes);
        var blockShape = new[] { shard.BlockRows }.Concat(rowShape).ToArray();
        var source = whole is null ? null : Padded(whole, shard.BlockRows * processes.Size);
        return processes.Scatter(source, blockShape, type).narrow(0, 0, shard.Count).contiguous().MoveToOuterDisposeScope();
    }

    static Tensor Padded(Tensor values, long rows)
    {
        var cpu = values.cpu().contiguous();
        if (cpu.shape[0] == rows) return cpu;
        var shape = cpu.shape.ToArray();
        shape[0] = rows - shape[0];
        return cat(new[] { cpu, zeros(shape, cpu.dtype) });
    }
}
