using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Distributed;

/// <summary>
/// After backward, makes every rank's gradients the mean over ranks, as Horovod and DDP do: the replicated
/// parameters' gradients are flattened into a few large buckets (few, large messages: latency is paid per call), each
/// summed by one all-reduce and divided by the rank count. Row-sharded parameters (the ConIC classifier) are not
/// communicated: each rank's gradient of its rows already sums every rank's loss, so it is only divided.
/// </summary>
public sealed class GradientAverager
{
    readonly ProcessGroup _processes;
    readonly Parameter[][] _buckets;
    readonly IReadOnlyList<Parameter> _sharded;

    /// <param name="bucketBytes">Largest bucket; PyTorch DDP's default is 25 MB.</param>
    public GradientAverager(ProcessGroup processes, IReadOnlyList<Parameter> replicated, IReadOnlyList<Parameter> sharded, long bucketBytes = 25L << 20)
    {
        _processes = processes;
        _sharded = sharded;
        var buckets = new List<Parameter[]>();
        var current = new List<Parameter>();
        long bytes = 0;
        foreach (var parameter in replicated)
        {
            long size = parameter.numel() * sizeof(float);
            if (current.Count > 0 && bytes + size > bucketBytes)
            {
                buckets.Add(current.ToArray());
                (current, bytes) = ([], 0);
            }
            current.Add(parameter);
            bytes += size;
        }
        if (current.Count > 0) buckets.Add(current.ToArray());
        _buckets = buckets.ToArray();
    }

    /// <summary>How many all-reduce calls one averaging makes (the gradients are packed into buckets).</summary>
    public int BucketCount => _buckets.Length;

    /// <summary>Replaces every rank's gradients by their mean over the ranks (row-sharded ones are left as they are); nothing in one process.</summary>
    public void Average()
    {
        if (!_processes.IsDistributed) return;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        float scale = 1f / _processes.Size;
        foreach (var bucket in _buckets)
        {
            // A parameter this step left without a gradient (frozen, unused) sends zeros, as every rank must send the same
            // layout, and stays without one: the optimiser skips it (no weight decay either), as in one process.
            var flat = cat(bucket.Select(p => (p.grad ?? zeros_like(p)).reshape(-1)).ToArray());
            _processes.AllReduce(flat);
            flat.mul_(Kept(scale));
            long offset = 0;
            foreach (var parameter in bucket)
            {
                long count = parameter.numel();
                var mean = flat.narrow(0, offset, count).view_as(parameter);
                parameter.grad?.copy_(mean);
                offset += count;
            }
        }
        foreach (var parameter in _sharded) parameter.grad?.mul_(Kept(scale));
    }
}
