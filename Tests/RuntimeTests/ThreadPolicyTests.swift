// Thread policy: default cores / local ranks, explicit oversubscription warned about, launcher variables read.
import Testing
import Runtime

@Test func threadPolicyDefaultsToCoresPerLocalRank() {
    #expect(ThreadPolicy.resolve(requested: nil, cores: 2, localRanks: 1).threads == 2)
    #expect(ThreadPolicy.resolve(requested: nil, cores: 16, localRanks: 4).threads == 4)
    #expect(ThreadPolicy.resolve(requested: nil, cores: 2, localRanks: 4).threads == 1)
    #expect(ThreadPolicy.resolve(requested: nil, cores: 2, localRanks: 4).warning == nil)
    #expect(ThreadPolicy.resolve(requested: 1, cores: 2, localRanks: 2).warning == nil)
    let over = ThreadPolicy.resolve(requested: 2, cores: 2, localRanks: 2)
    #expect(over.threads == 2 && over.warning?.contains("oversubscribed") == true)
    #expect(ThreadPolicy.localRanks(["OMPI_COMM_WORLD_LOCAL_SIZE": "3"]) == 3)
    #expect(ThreadPolicy.localRanks(["SLURM_NTASKS_PER_NODE": "8(x2)"]) == 8)
    #expect(ThreadPolicy.localRanks([:]) == 1)
}
