using System.Security.Cryptography;
using System.Text;
using static TorchSharp.torch;

namespace Conic.Distributed;

/// <summary>Checks and values every rank must share, made collective so that no rank goes on alone.</summary>
public static class ProcessAgreement
{
    /// <summary>Rank 0's <paramref name="value"/> on every rank (clocks, decisions taken from time).</summary>
    public static double FromMain(this ProcessGroup processes, double value) => processes.FromMain([value])[0];

    /// <summary>Rank 0's <paramref name="values"/> on every rank, in one broadcast (bit for bit: doubles travel as int64).</summary>
    public static double[] FromMain(this ProcessGroup processes, double[] values)
    {
        if (!processes.IsDistributed) return values;
        using var bits = tensor(values.Select(BitConverter.DoubleToInt64Bits).ToArray());
        processes.Broadcast(bits);
        return bits.data<long>().ToArray().Select(BitConverter.Int64BitsToDouble).ToArray();
    }

    /// <summary>Every rank's <paramref name="mine"/>, in rank order.</summary>
    public static bool[] FromEveryRank(this ProcessGroup processes, bool mine)
    {
        if (!processes.IsDistributed) return [mine];
        using var flag = tensor(new[] { mine ? (byte)1 : (byte)0 });
        using var all = processes.AllGather(flag);
        return all.data<byte>().ToArray().Select(b => b != 0).ToArray();
    }

    /// <summary>
    /// Throws the same error on every rank when the ranks' <paramref name="descriptions"/> (what, text) differ:
    /// compared by hash, so ranks started with other options or other data stop at once instead of training apart.
    /// </summary>
    public static void RequireSame(this ProcessGroup processes, params (string What, string Text)[] descriptions)
    {
        if (!processes.IsDistributed) return;
        var hashes = descriptions.SelectMany(d => SHA256.HashData(Encoding.UTF8.GetBytes(d.Text))).ToArray();
        using var mine = tensor(hashes);
        using var all = processes.AllGather(mine);
        var bytes = all.data<byte>().ToArray();
        int length = hashes.Length, hashLength = SHA256.HashSizeInBytes;
        for (int rank = 1; rank < processes.Size; rank++)
        for (int d = 0; d < descriptions.Length; d++)
        {
            var first = bytes.AsSpan(d * hashLength, hashLength);
            var other = bytes.AsSpan(rank * length + d * hashLength, hashLength);
            if (!first.SequenceEqual(other))
                throw new ConicException($"--distributed: rank {rank} has other {descriptions[d].What} than rank 0" +
                                         (processes.Rank is 0 ? "" : $" (this is rank {processes.Rank}: {Shorten(descriptions[d].Text)})") +
                                         "; start every rank with the same command and data");
        }
    }

    static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "…";
}
