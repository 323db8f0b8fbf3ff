using System;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

/// <summary>
/// Marks ELF version requirements (GLIBCXX_*) weak when the system libstdc++ does not define them.
/// ELF64 little-endian only (linux-x64, linux-arm64).
/// </summary>
public class WeakenMissingGlibcxxVersion : Task
{
    [Required] public ITaskItem[] Libraries { get; set; } = Array.Empty<ITaskItem>();

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    static readonly string[] LibStdCxxCandidates =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6",
        "/usr/lib/libstdc++.so.6",
    };

    public override bool Execute()
    {
        string systemLib = LibStdCxxCandidates.FirstOrDefault(File.Exists);
        if (systemLib == null)
        {
            Log.LogMessage(MessageImportance.Low, "No system libstdc++ found; libLibTorchSharp.so left unchanged.");
            return true;
        }
        byte[] systemBytes = File.ReadAllBytes(systemLib);
        foreach (var item in Libraries)
        {
            string path = item.ItemSpec;
            try
            {
                byte[] elf = File.ReadAllBytes(path);
                int weakened = WeakenMissing(elf, name => name.StartsWith("GLIBCXX_", StringComparison.Ordinal)
                                                          && !Contains(systemBytes, Encoding.ASCII.GetBytes(name + "\0")));
                if (weakened == 0) continue;
                string temp = path + ".glibcxx-tmp";
                File.WriteAllBytes(temp, elf);
                // Delete-then-move, never write in place: the output may be a hard link into the NuGet cache.
                File.Delete(path);
                File.Move(temp, path);
                Log.LogMessage(MessageImportance.Normal, $"{path}: marked {weakened} GLIBCXX version need(s) weak ({systemLib} lacks them).");
            }
            catch (Exception e)
            {
                Log.LogError($"{path}: could not patch GLIBCXX version needs: {e.Message}");
            }
        }
        return !Log.HasLoggedErrors;
    }

    /// <summary>Sets VER_FLG_WEAK on each vernaux entry whose name matches; returns how many changed.</summary>
    static int WeakenMissing(byte[] elf, Func<string, bool> shouldWeaken)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != 'E' || elf[2] != 'L' || elf[3] != 'F' || elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("not a little-endian ELF64 file");
        long shoff = BitConverter.ToInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        int changed = 0;
        for (int s = 0; s < shnum; s++)
        {
            long sh = shoff + (long)s * shentsize;
            if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
            long verneedOffset = BitConverter.ToInt64(elf, (int)sh + 0x18);
            uint strtabIndex = BitConverter.ToUInt32(elf, (int)sh + 0x28);
            uint needCount = BitConverter.ToUInt32(elf, (int)sh + 0x2C);
            long strtabOffset = BitConverter.ToInt64(elf, (int)(shoff + strtabIndex * shentsize) + 0x18);

            long need = verneedOffset;
            for (uint n = 0; n < needCount; n++)
            {
                int auxCount = BitConverter.ToUInt16(elf, (int)need + 2);
                long aux = need + BitConverter.ToUInt32(elf, (int)need + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    ushort flags = BitConverter.ToUInt16(elf, (int)aux + 4);
                    string name = ReadCString(elf, strtabOffset + BitConverter.ToUInt32(elf, (int)aux + 8));
                    if ((flags & VerFlgWeak) == 0 && shouldWeaken(name))
                    {
                        BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(elf, (int)aux + 4);
                        changed++;
                    }
                    aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                }
                need += BitConverter.ToUInt32(elf, (int)need + 12);
            }
        }
        return changed;
    }

    static string ReadCString(byte[] bytes, long offset)
    {
        int end = Array.IndexOf(bytes, (byte)0, (int)offset);
        return Encoding.ASCII.GetString(bytes, (int)offset, end - (int)offset);
    }

    static bool Contains(byte[] haystack, byte[] needle)
    {
        for (int i = Array.IndexOf(haystack, needle[0]); i >= 0 && i <= haystack.Length - needle.Length;
             i = Array.IndexOf(haystack, needle[0], i + 1))
        {
            int k = 1;
            while (k < needle.Length && haystack[i + k] == needle[k]) k++;
            if (k == needle.Length) return true;
        }
        return false;
    }
}
