// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// Code an EOA delegates to with EIP-7702 (type-4 transaction). The EOA then calls
/// itself with execute(): every call below is an internal transfer FROM the EOA.
contract BatchWallet {
    struct Call {
        address to;
        uint256 value;
        bytes data;
    }

    event Executed(address indexed to, uint256 value);

    receive() external payable {}

    function execute(Call[] calldata calls) external payable {
        require(msg.sender == address(this), "only the account itself");
        for (uint256 i = 0; i < calls.length; i++) {
            (bool ok, ) = calls[i].to.call{value: calls[i].value}(calls[i].data);
            require(ok, "call failed");
            emit Executed(calls[i].to, calls[i].value);
        }
    }
}
