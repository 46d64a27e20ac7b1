// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// A Tornado-shaped mixer without the zero-knowledge part: deposit a fixed
/// denomination with commitment = keccak256(secret); later anyone (usually a relayer
/// paying the gas) reveals the secret and names a recipient, who gets the
/// denomination by an internal transfer. Revealing the secret links the withdrawal to
/// its deposit on chain; generic taint tracing does not read calldata and sees a pool.
contract Mixer {
    uint256 public constant DENOMINATION = 10 ether;

    mapping(bytes32 => bool) public commitments;
    mapping(bytes32 => bool) public spent;
    uint32 public nextIndex;

    event Deposit(bytes32 indexed commitment, uint32 leafIndex, uint256 timestamp);
    event Withdrawal(address to, bytes32 nullifierHash, address indexed relayer);

    function deposit(bytes32 commitment) external payable {
        require(msg.value == DENOMINATION, "wrong denomination");
        require(!commitments[commitment], "commitment exists");
        commitments[commitment] = true;
        emit Deposit(commitment, nextIndex++, block.timestamp);
    }

    function withdraw(bytes32 secret, address payable recipient) external {
        bytes32 commitment = keccak256(abi.encodePacked(secret));
        require(commitments[commitment], "unknown commitment");
        require(!spent[commitment], "already withdrawn");
        spent[commitment] = true;
        (bool ok, ) = recipient.call{value: DENOMINATION}("");
        require(ok, "payment failed");
        emit Withdrawal(recipient, keccak256(abi.encodePacked(commitment)), msg.sender);
    }
}
